// Command poll is the bench's stopwatch: it GETs a URL until the answer is
// 200 and its body matches a pattern, then prints the seconds elapsed since
// a given instant (by default its own start).
//
//	poll --url http://127.0.0.1:18480/api/v1/sessions/ID --token T \
//	     --match '"status":\s*"REJECTED"' --since "$EPOCHREALTIME" --timeout 60s
//
// It exits 0 when the answer came, 2 when the timeout passed first (printing
// "timeout" and the last answer on standard error), 1 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"time"
)

func main() {
	code, err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "poll:", err)
	}
	os.Exit(code)
}

func run(args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("poll", flag.ContinueOnError)
	url := fs.String("url", "", "URL to GET")
	token := fs.String("token", "", "bearer token to send, if any")
	match := fs.String("match", "", "regular expression the body must match (default: any body)")
	since := fs.String("since", "", "Unix time in seconds, with a fraction (bash's $EPOCHREALTIME), to count from (default: now)")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	interval := fs.Duration("interval", 5*time.Millisecond, "pause between attempts")
	if err := fs.Parse(args); err != nil {
		return 1, err
	}
	if *url == "" {
		return 1, errors.New("--url is required")
	}
	re, err := regexp.Compile(*match)
	if err != nil {
		return 1, fmt.Errorf("--match: %w", err)
	}
	from := time.Now()
	if *since != "" {
		secs, err := strconv.ParseFloat(*since, 64)
		if err != nil {
			return 1, fmt.Errorf("--since %q: want Unix seconds such as 1732600000.123456", *since)
		}
		from = time.Unix(0, int64(secs*1e9))
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	client := &http.Client{}
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
		if err != nil {
			return 1, fmt.Errorf("--url: %w", err)
		}
		if *token != "" {
			req.Header.Set("Authorization", "Bearer "+*token)
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && re.Match(body) {
				fmt.Fprintf(stdout, "%.3f\n", time.Since(from).Seconds())
				return 0, nil
			}
			last = fmt.Sprintf("%d %.200s", resp.StatusCode, body)
		} else if ctx.Err() == nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(stdout, "timeout")
			fmt.Fprintf(stderr, "poll: %s: no matching answer within %s; last: %s\n", *url, *timeout, last)
			return 2, nil
		case <-time.After(*interval):
		}
	}
}
