package tbops

import (
	"net/url"
	"regexp"
)

// RedactURL returns s with the password of a URL replaced by "xxxxx", the form
// net/url's Redacted uses ("http://admin:xxxxx@host/"). A string that is not a
// URL with a password comes back unchanged. Every output of tbops (reports,
// evidence, errors, warnings, logs) passes node and Prometheus URLs through it.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return RedactText(s)
	}
	if _, has := u.User.Password(); !has {
		return s
	}
	return u.Redacted()
}

// userinfo matches the user:password@ part of a URL inside free text (an error
// message that quotes a URL, a log line).
var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^/@:\s"']*):[^/@\s"']*@`)

// RedactText replaces the password of every URL inside s by "xxxxx". Use it on
// text built elsewhere (an error from net/http, a wrapped message) that may
// quote a URL with credentials.
func RedactText(s string) string {
	return userinfo.ReplaceAllString(s, "${1}:xxxxx@")
}
