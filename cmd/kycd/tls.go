package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// certificate is serve's TLS certificate, read from --tls-cert and
// --tls-key and read again on SIGHUP: new handshakes get the new one,
// connections already open keep theirs, so a renewal (certbot, an ACME
// client, a secret mount) drops nothing.
type certificate struct {
	certFile, keyFile string
	current           atomic.Pointer[tls.Certificate]
}

// loadCertificate reads the pair, naming the flags in its error.
func loadCertificate(certFile, keyFile string) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile}
	if _, err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// load reads the pair and serves it from now on; on an error the one
// served stays.
func (c *certificate) load() (*tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s / --tls-key %s: %w (want a PEM certificate, its chain after it, and the PEM private key that matches it)", c.certFile, c.keyFile, err)
	}
	c.current.Store(&pair)
	return &pair, nil
}

// get is tls.Config.GetCertificate.
func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// config is the server's TLS configuration. HTTP/1.1 only: the
// connection limiter, the untrusted idle timeout and the drain's
// Connection: close all work by connection, which HTTP/2 would share
// between requests (docs/decisions.md).
func (c *certificate) config() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: c.get,
		NextProtos:     []string{"http/1.1"},
	}
}

// describeCertificate logs what a certificate is for and until when, warning when it
// has expired or is about to.
func describeCertificate(log *slog.Logger, msg string, pair *tls.Certificate) {
	leaf := pair.Leaf
	if leaf == nil && len(pair.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(pair.Certificate[0])
	}
	if leaf == nil {
		log.Info(msg)
		return
	}
	args := []any{"subject", leaf.Subject.String(), "dns_names", leaf.DNSNames, "not_after", leaf.NotAfter.UTC()}
	switch left := time.Until(leaf.NotAfter); {
	case left <= 0:
		log.Warn(msg+": the certificate has EXPIRED; clients refuse it: renew it and send kycd SIGHUP", args...)
	case left < 7*24*time.Hour:
		log.Warn(msg+": the certificate expires within a week: renew it and send kycd SIGHUP", args...)
	default:
		log.Info(msg, args...)
	}
}

// reloadOnHangup reads the certificate again at each SIGHUP until ctx
// ends. A pair that does not load is logged and the one served stays.
// SIGHUP is caught from the moment it returns (before the listening line
// is printed): uncaught, it would end the process.
func (c *certificate) reloadOnHangup(ctx context.Context, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			pair, err := c.load()
			if err != nil {
				log.Error("SIGHUP: the TLS certificate was not reloaded; the previous one is still served", "err", err)
				continue
			}
			describeCertificate(log, "SIGHUP: TLS certificate reloaded", pair)
		}
	}()
}
