// Command sink is the bench's merchant: a fast HTTP notification receiver.
// It answers 204 to every POST at once, without checking the signature,
// and keeps the distinct webhook-id values it received and the time the
// last new one came. GET /count answers them as one line of JSON:
//
//	{"distinct":1234,"requests":1240,"lastNew":1732600000.123456}
//
// (lastNew in Unix seconds, 0 before the first), so that bench/run can
// tell when every notification of a load has reached it.
//
//	sink --addr 127.0.0.1:18482
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sink:", err)
		os.Exit(1)
	}
}

// received is what the sink has seen.
type received struct {
	mu       sync.Mutex
	ids      map[string]struct{}
	requests int
	lastNew  time.Time
}

func (r *received) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if _, ok := r.ids[id]; !ok {
		r.ids[id] = struct{}{}
		r.lastNew = time.Now()
	}
}

func (r *received) count(w io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	last := 0.0
	if !r.lastNew.IsZero() {
		last = float64(r.lastNew.UnixNano()) / 1e9
	}
	fmt.Fprintf(w, `{"distinct":%d,"requests":%d,"lastNew":%.6f}`+"\n", len(r.ids), r.requests, last)
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:18482", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rec := &received{ids: map[string]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rec.add(r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, _ *http.Request) { rec.count(w) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
