// Command local is `make run`: the functions' HTTP routes on 127.0.0.1:3000, against a
// sandboxed LivePerson unless credentials are configured. See shared/localapi.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/lpmtls/lpmtls/shared/localapi"
)

func main() {
	opts, err := localapi.ParseArgs(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once
	}()
	if err := localapi.Run(ctx, opts, os.Stdout); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "lpmtls local:", err)
	os.Exit(1)
}
