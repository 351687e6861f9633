// Command kycd receives Ralio's KYC webhooks, keeps every session's true
// state and tells the merchant's systems what happened.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kycd/kycd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if _, logged := errors.AsType[*loggedError](err); !logged {
			fmt.Fprintln(os.Stderr, "kycd:", shown(describe(err)))
		}
		stop()
		os.Exit(exitCode(err))
	}
}

// describe is what a person at the terminal needs of err: for errors of the
// request (not found, conflict, invalid) the message alone, not the chain
// of layers it passed through.
func describe(err error) string {
	var e *kycd.Error
	if errors.As(err, &e) {
		switch e.Code {
		case kycd.ENOTFOUND, kycd.ECONFLICT, kycd.EUNAUTHORIZED:
			return e.Message
		case kycd.EINVALID:
			if e.Err != nil {
				return e.Message + ": " + e.Err.Error()
			}
			return e.Message
		}
	}
	return err.Error()
}
