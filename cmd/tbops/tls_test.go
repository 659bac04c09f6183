package main

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TB_TLS_HANDSHAKE_TIMEOUT_MS bounds the RPC client's TLS handshake: a server
// that accepts and never answers the ClientHello is given up on well before
// --timeout.
func TestRPCClientHonoursTLSHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold the connection open, say nothing
		}
	}()
	env := map[string]string{"TB_TLS_HANDSHAKE_TIMEOUT_MS": "200"}
	code, _, errOut := runCLI(t, env, "treasury", "balance", "--rpc", "https://"+ln.Addr().String()+"/", "--timeout", "20s")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "TLS handshake timeout", "the handshake bound ended it, not --timeout (\"no answer within 20s\")")

	code, _, errOut = runCLI(t, map[string]string{"TB_TLS_HANDSHAKE_TIMEOUT_MS": "soon"}, "treasury", "balance", "--rpc", "https://"+ln.Addr().String()+"/")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "TB_TLS_HANDSHAKE_TIMEOUT_MS")
}
