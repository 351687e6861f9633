// Command floor is the bench's baseline: a webhook receiver that does only
// what none can skip. It reads the body, checks Ralio's X-Signature (the
// hex HMAC-SHA256 of the body, as kycd checks it) and answers 200
// {"received":true}; it stores nothing. kycd's acknowledged rate is reported
// as a ratio to this one's, measured in the same round by the same load
// tool.
//
//	floor --addr 127.0.0.1:18481 --secret S
//
// On SIGINT or SIGTERM it prints how many bodies it accepted and their mean
// size, then exits.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:18481", "address to listen on")
	secret := fs.String("secret", "", "Ralio webhook secret the signatures are checked with")
	maxBody := fs.Int64("max-body", 1<<20, "largest body accepted, in bytes (kycd's default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secret == "" {
		return errors.New("--secret is required")
	}
	var r receiver
	r.secret = []byte(*secret)
	r.maxBody = *maxBody
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/ralio", &r)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })

	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("floor listening on http://%s\n", ln.Addr())
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	n, size := r.accepted.Load(), r.bytes.Load()
	mean := int64(0)
	if n > 0 {
		mean = size / n
	}
	fmt.Printf("floor accepted %d bodies, mean %d bytes\n", n, mean)
	return err
}

// receiver is the floor's webhook handler.
type receiver struct {
	secret   []byte
	maxBody  int64
	accepted atomic.Int64
	bytes    atomic.Int64
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.maxBody))
	if err != nil {
		http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	sig, err := hex.DecodeString(req.Header.Get("X-Signature"))
	mac := hmac.New(sha256.New, r.secret)
	mac.Write(body)
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.accepted.Add(1)
	r.bytes.Add(int64(len(body)))
	w.Header().Set("Content-Type", "application/json")
	// A client gone before the answer has no one left to tell.
	_, _ = io.WriteString(w, `{"received":true}`+"\n")
}
