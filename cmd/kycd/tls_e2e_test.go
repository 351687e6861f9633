package main

// End-to-end tests of HTTPS (--tls-cert, --tls-key, SIGHUP), of reverse
// proxies (--trusted-proxies) and of what serve says and refuses on an
// address other machines reach.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// selfSigned is a self-signed certificate for 127.0.0.1 and localhost,
// written as PEM files.
type selfSigned struct {
	cert   *x509.Certificate
	roots  *x509.CertPool // trusts cert alone
	pemCrt []byte
	pemKey []byte
}

func newSelfSigned(t *testing.T, name string) selfSigned {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return selfSigned{cert: cert, roots: roots,
		pemCrt: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pemKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}
}

// write puts the pair at the paths, as a renewal would.
func (c selfSigned) write(t *testing.T, certFile, keyFile string) {
	t.Helper()
	if err := os.WriteFile(certFile, c.pemCrt, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, c.pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
}

// servedSerial is the serial number of the certificate s serves on a new
// connection, verified against roots.
func servedSerial(t *testing.T, addr string, roots *x509.CertPool) *big.Int {
	t.Helper()
	d := &tls.Dialer{Config: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
	c, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber
}

// kycd serves HTTPS with the certificate given: a signed webhook over TLS
// is stored and notified; SIGHUP makes new connections get a renewed
// certificate while a connection already open goes on; a renewal that
// does not load keeps the certificate served.
func TestServeHTTPS(t *testing.T) {
	// Not parallel: it sends the test process SIGHUP, and a serve of
	// another test that is just starting or stopping would not catch it.
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first, renewed := newSelfSigned(t, "kycd first"), newSelfSigned(t, "kycd renewed")
	first.write(t, certFile, keyFile)
	both := x509.NewCertPool()
	both.AddCert(first.cert)
	both.AddCert(renewed.cert)

	m := newMerchant(t, testSinkSecret)
	db := filepath.Join(t.TempDir(), "kycd.db")
	s := serveTrusting(t, both, nil, "--addr", "127.0.0.1:0", "--database", "sqlite:"+db,
		"--ralio-secret", testSecret, "--admin-token", testToken,
		"--tls-cert", certFile, "--tls-key", keyFile,
		"--sink", "name=crm,type=http,url="+m.URL, "--sink-secret", testSinkSecret)
	s.DB, s.Secret, s.Token = db, testSecret, testToken
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("serve with --tls-cert printed %s, want an https:// listening line", s.URL)
	}

	s.deliver(t, example(t, "a-kyc_session_failed.json"))
	wantStatus(t, s.session(t, failedSession), "REJECTED")
	eventually(t, "the notification to reach the merchant", func() bool { return len(m.notifications()) == 1 })

	// Plain HTTP on the HTTPS port is refused, never served.
	plain := &http.Client{Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+s.Addr+"/api/v1/sessions/"+failedSession, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if resp, err := plain.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP to the HTTPS port answered 200")
		}
	}

	if got := servedSerial(t, s.Addr, first.roots); got.Cmp(first.cert.SerialNumber) != 0 {
		t.Fatalf("served certificate serial %v, want the first's %v", got, first.cert.SerialNumber)
	}
	// A keep-alive connection, open before the renewal (with the token,
	// so that it keeps the server's idle timeout).
	reused := func() (bool, *big.Int) {
		var info httptrace.GotConnInfo
		ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { info = i }})
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/v1/whoami", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatalf("GET /api/v1/whoami: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body) // read whole, so the connection is kept
		resp.Body.Close()
		return info.Reused, resp.TLS.PeerCertificates[0].SerialNumber
	}
	reused()

	renewed.write(t, certFile, keyFile)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a new connection to get the renewed certificate", func() bool {
		return servedSerial(t, s.Addr, both).Cmp(renewed.cert.SerialNumber) == 0
	})
	if again, serial := reused(); !again || serial.Cmp(first.cert.SerialNumber) != 0 {
		t.Errorf("after SIGHUP the open connection: reused %v, serial %v; want it reused, still with the first certificate %v", again, serial, first.cert.SerialNumber)
	}
	if !strings.Contains(s.Stderr.String(), "TLS certificate reloaded") {
		t.Errorf("no log line says the certificate was reloaded:\n%s", s.Stderr)
	}

	// A renewal half written: the served certificate stays.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\ngarbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a log line saying the certificate was not reloaded", func() bool {
		return strings.Contains(s.Stderr.String(), "not reloaded; the previous one is still served")
	})
	if got := servedSerial(t, s.Addr, renewed.roots); got.Cmp(renewed.cert.SerialNumber) != 0 {
		t.Errorf("after a failed reload the served serial is %v, want the renewed %v", got, renewed.cert.SerialNumber)
	}
	wantJSON(t, s.post(t, example(t, "a-kyc_session_failed.json")), http.StatusOK, `{"received":true,"duplicate":true}`)
}

// --tls-cert and --tls-key come together, and a pair that does not load
// stops serve before it listens, naming both flags.
func TestTLSFlagsAreChecked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c := newSelfSigned(t, "kycd")
	c.write(t, certFile, keyFile)
	other := newSelfSigned(t, "other")
	otherKey := filepath.Join(dir, "other.key")
	if err := os.WriteFile(otherKey, other.pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags []string
		want  []string
	}{
		{"a certificate without its key", []string{"--tls-cert", certFile}, []string{"--tls-cert is set but --tls-key", "KYCD_TLS_KEY", "both"}},
		{"a key without its certificate", []string{"--tls-key", keyFile}, []string{"--tls-key is set but --tls-cert", "KYCD_TLS_CERT"}},
		{"a missing file", []string{"--tls-cert", filepath.Join(dir, "nope.crt"), "--tls-key", keyFile}, []string{"--tls-cert", "nope.crt", "--tls-key"}},
		{"a key of another certificate", []string{"--tls-cert", certFile, "--tls-key", otherKey}, []string{"--tls-cert", "--tls-key", "private key"}},
		{"a bad proxy", []string{"--trusted-proxies", "10.0.0.0/8,proxy.local"}, []string{"--trusted-proxies", `"proxy.local"`, "CIDR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := filepath.Join(t.TempDir(), "kycd.db")
			_, err := cli(t, append([]string{"serve", "--addr", "127.0.0.1:0", "--database", "sqlite:" + db}, tc.flags...)...)
			if err == nil {
				t.Fatalf("serve with %s started", tc.name)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("serve with %s = %q, want it to say %q", tc.name, err, w)
				}
			}
			if _, err := os.Stat(db); err == nil {
				t.Errorf("serve with %s created its database before refusing", tc.name)
			}
			if _, _, err := cliEnv(t, nil, append([]string{"config", "check"}, tc.flags...)...); err == nil || !strings.Contains(err.Error(), tc.want[0]) {
				t.Errorf("kycd config check with %s = %v, want it refused saying %q", tc.name, err, tc.want[0])
			}
		})
	}

	t.Run("from the environment", func(t *testing.T) {
		t.Parallel()
		db := filepath.Join(t.TempDir(), "kycd.db")
		env := map[string]string{"KYCD_TLS_CERT": certFile, "KYCD_TLS_KEY": keyFile, "KYCD_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"}
		s := serveTrusting(t, c.roots, func(k string) string { return env[k] }, "--addr", "127.0.0.1:0", "--database", "sqlite:"+db)
		if !strings.HasPrefix(s.URL, "https://") {
			t.Errorf("serve with KYCD_TLS_CERT and KYCD_TLS_KEY listens on %s, want https://", s.URL)
		}
	})
}

// Behind a trusted proxy the audit trail records the client it names, in
// the API and in kycd audit list; the same header from a peer that is no
// trusted proxy is ignored.
func TestTrustedProxiesNameTheClient(t *testing.T) {
	t.Parallel()
	readAs := func(t *testing.T, s *kycdServer, header http.Header) {
		t.Helper()
		header.Set("Authorization", "Bearer "+s.Token)
		a := s.mustDo(t, newRequest(http.MethodGet, s.URL+"/api/v1/events/"+failedEventID, nil, header))
		if a.status != http.StatusOK {
			t.Fatalf("GET /api/v1/events/%s = %s", failedEventID, a)
		}
	}

	t.Run("trusted", func(t *testing.T) {
		t.Parallel()
		// The test's requests come from 127.0.0.1: the proxy.
		s := startServer(t, "--trusted-proxies", "10.0.0.0/8,127.0.0.1")
		s.deliver(t, example(t, "a-kyc_session_failed.json"))
		readAs(t, s, http.Header{"X-Forwarded-For": {"198.51.100.1, 203.0.113.9"}})
		readAs(t, s, http.Header{"Forwarded": {`for="[2001:db8::7]:4711";proto=https`}})
		readAs(t, s, http.Header{})
		trail := s.auditTrail(t, "&action=event.read")
		var from []string
		for _, e := range trail {
			from = append(from, e.Remote)
		}
		if want := []string{"127.0.0.1", "2001:db8::7", "203.0.113.9"}; strings.Join(from, " ") != strings.Join(want, " ") {
			t.Errorf("audit From of the three reads, newest first = %q, want %q", from, want)
		}
		out := mustCLI(t, "audit", "list", "--action", "event.read", "--database", "sqlite:"+s.DB)
		for _, want := range []string{"203.0.113.9", "2001:db8::7"} {
			if !strings.Contains(out, want) {
				t.Errorf("kycd audit list does not show %s:\n%s", want, out)
			}
		}
		if strings.Contains(out, "198.51.100.1") {
			t.Errorf("kycd audit list shows the address the client claimed left of its own:\n%s", out)
		}
	})

	t.Run("not trusted", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, "--trusted-proxies", "10.0.0.0/8")
		s.deliver(t, example(t, "a-kyc_session_failed.json"))
		readAs(t, s, http.Header{"X-Forwarded-For": {"203.0.113.9"}, "Forwarded": {"for=203.0.113.9"}})
		trail := s.auditTrail(t, "&action=event.read")
		if len(trail) != 1 || trail[0].Remote != "127.0.0.1" {
			t.Errorf("audit trail of a read from an untrusted peer with X-Forwarded-For = %+v, want one entry from 127.0.0.1", trail)
		}
	})
}

// On an address other machines reach, plain HTTP without a trusted proxy
// in front gets one clear warning; HTTPS, a trusted proxy or a loopback
// address get none.
func TestPlainHTTPOnTheNetworkWarns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c := newSelfSigned(t, "kycd")
	c.write(t, certFile, keyFile)
	const warning = "plain HTTP on an address other machines reach"
	for _, tc := range []struct {
		name  string
		addr  string
		flags []string
		warns bool
	}{
		{"0.0.0.0, plain HTTP", "0.0.0.0:0", nil, true},
		{"0.0.0.0, HTTPS", "0.0.0.0:0", []string{"--tls-cert", certFile, "--tls-key", keyFile}, false},
		{"0.0.0.0 behind a trusted proxy", "0.0.0.0:0", []string{"--trusted-proxies", "10.0.0.1"}, false},
		{"loopback", "127.0.0.1:0", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := filepath.Join(t.TempDir(), "kycd.db")
			s := serveTrusting(t, c.roots, nil, append([]string{"--addr", tc.addr, "--database", "sqlite:" + db, "--admin-token", chosenToken}, tc.flags...)...)
			if err := s.stop(t); err != nil {
				t.Fatal(err)
			}
			got := strings.Count(s.Stderr.String(), warning)
			if want := map[bool]int{true: 1, false: 0}[tc.warns]; got != want {
				t.Errorf("serve on %s logged the plain-HTTP warning %d times, want %d:\n%s", tc.name, got, want, s.Stderr)
			}
			if tc.warns && !strings.Contains(s.Stderr.String(), "--tls-cert") {
				t.Errorf("the warning does not say how to serve HTTPS:\n%s", s.Stderr)
			}
		})
	}
}
