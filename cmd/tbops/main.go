// Command tbops runs the Fast-Mainnet operations runbook: `tbops doctor` diagnoses
// every runbook at once, and one subcommand per area replaces the runbook's
// bash/jq/curl snippets. Exit codes: 0 ok, 1 warning, 2 critical, 3 unknown or error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/theblock/tbops/rpc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code. Everything it touches
// of the process (arguments, streams, environment) is passed in, so tests run it
// in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ex *exitError
	if errors.As(err, &ex) {
		if ex.err != nil {
			fmt.Fprintf(stderr, "tbops: %v\n", ex.err)
		}
		return ex.code
	}
	fmt.Fprintf(stderr, "tbops: %v\n", err)
	return 3
}

// exitError ends a command with a given exit code and, optionally, a message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

// exitCode ends the command with code and no message (the output said it all).
func exitCode(code int) error {
	if code == 0 {
		return nil
	}
	return &exitError{code: code}
}

// rpcErr turns a client error into the one-line exit-3 error, with what to do
// next (an exitError passes through unchanged).
func rpcErr(err error) error {
	if err == nil {
		return nil
	}
	var ex *exitError
	if errors.As(err, &ex) {
		return err
	}
	return &exitError{code: 3, err: withRPCHint(err)}
}

// withRPCHint adds to a failed RPC call what to do next in terms of tbops's
// flags: the rpc package's errors say only what failed.
func withRPCHint(err error) error {
	if hint := rpcHint(err); hint != "" {
		return fmt.Errorf("%w; %s", err, hint)
	}
	return err
}

func rpcHint(err error) string {
	switch {
	case errors.Is(err, rpc.ErrRedirect):
		return "give --rpc the URL the node serves JSON-RPC on: tbops does not follow a write's redirect, nor a read's to another host"
	case errors.Is(err, rpc.ErrUnauthorized):
		return "check the bearer token (--token or the method's token variable)"
	case errors.Is(err, rpc.ErrMethodNotFound):
		return "the node does not serve this method: check its version or --rpc"
	case errors.Is(err, rpc.ErrRateLimited):
		return "the node is rate limiting: run again after the delay it asked for"
	case errors.Is(err, context.DeadlineExceeded):
		return "the node did not answer in time: check its load, or raise --timeout (the deadline of each call, retries included)"
	case errors.Is(err, rpc.ErrUnavailable):
		return "is the node running and is --rpc (TB_RPC_URL) right?"
	}
	return ""
}
