package tbops_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/theblock/tbops"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://admin:pw@host:3030/":    "http://admin:xxxxx@host:3030/",
		"https://u:p%40ss@h/x?y=1":      "https://u:xxxxx@h/x?y=1",
		"http://host:3030/":             "http://host:3030/",
		"http://user@host/":             "http://user@host/",
		"not a url":                     "not a url",
		`Post "http://a:b@h/": refused`: `Post "http://a:xxxxx@h/": refused`,
	} {
		assert.Equal(t, want, tbops.RedactURL(in), in)
	}
}

func TestRedactText(t *testing.T) {
	got := tbops.RedactText(`cannot reach http://admin:s3cret@node:3030/ or https://u:p@prom:9090/api (dial tcp: refused)`)
	assert.Equal(t, `cannot reach http://admin:xxxxx@node:3030/ or https://u:xxxxx@prom:9090/api (dial tcp: refused)`, got)
	assert.NotContains(t, got, "s3cret")
}
