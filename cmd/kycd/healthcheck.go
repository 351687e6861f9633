package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// healthcheckTimeout bounds one check: a container runtime's health check
// has its own timeout, and a check must not outlive it.
const healthcheckTimeout = 5 * time.Second

// healthcheckCmd asks a running serve whether it is alive (/healthz) or
// ready (/readyz), for the HEALTHCHECK of an image that has no shell or
// curl (the release image is FROM scratch) and for scripts.
func healthcheckCmd(e *env) *cobra.Command {
	var ready bool
	var url string
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Check that a running kycd serve answers /healthz (or /readyz); exit 1 if not",
		Long: `GET /healthz of the kycd serve at --addr (KYCD_ADDR; an address on every
interface, 0.0.0.0 or [::], is reached on loopback) and exit 0 on 200, 1 on
anything else or no answer within 5 s. --ready asks /readyz instead, which also
checks the database and fails while serve shuts down. With --tls-cert
and --tls-key (KYCD_TLS_CERT, KYCD_TLS_KEY: as serve has them; only the
certificate's presence is used) it asks over HTTPS, without verifying the
certificate: it checks this machine's own serve. --url names the whole URL
instead (e.g. https://kycd.example.com/healthz behind a proxy).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client := http.DefaultClient
			if url == "" {
				path := "/healthz"
				if ready {
					path = "/readyz"
				}
				url = "http://" + reachable(e.cfg.Addr) + path
				if e.cfg.TLSCert != "" {
					// serve speaks HTTPS with this certificate, which need
					// not name the loopback address asked: the check is of
					// this machine's own process and sends no credential,
					// so the certificate is not verified.
					url = "https://" + strings.TrimPrefix(url, "http://")
					client = &http.Client{Transport: &http.Transport{
						TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // G402: see above
					}}
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), healthcheckTimeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return fmt.Errorf("--url %s: %w", url, err)
			}
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck %s: no answer: %w", url, err)
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // the body says nothing the status does not
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck %s: answered %s", url, resp.Status)
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]any{"url": url, "status": resp.StatusCode})
			}
			_, err = fmt.Fprintf(e.stdout, "ok: %s answered %s\n", url, resp.Status)
			return err
		},
	}
	cmd.Flags().BoolVar(&ready, "ready", false, "ask /readyz (ready to take webhooks) instead of /healthz (alive)")
	cmd.Flags().StringVar(&url, "url", "", "the URL to GET instead of http://ADDR/healthz")
	e.use(cmd, "addr", "tls-cert", "tls-key", "json")
	return cmd
}

// reachable is addr as a client reaches it: an address on every interface
// (serve's 0.0.0.0:8080) on loopback.
func reachable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		if ip.Is6() {
			return net.JoinHostPort("::1", port)
		}
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}
