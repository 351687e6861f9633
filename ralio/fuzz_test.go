package ralio_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kycd/kycd/ralio"
)

func testdataBodies(f *testing.F) [][]byte {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		f.Fatalf("no testdata: %v", err)
	}
	var bodies [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	return bodies
}

func isCanonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func FuzzParse(f *testing.F) {
	for _, b := range testdataBodies(f) {
		f.Add(b)
	}
	for _, s := range []string{
		``, `null`, `[]`, `{}`, `{"id":1}`, `{} {}`, `"x"`,
		`{"id":"550e8400-e29b-41d4-a716-446655440000","event":"kyc.session_failed","timestamp":"2025-06-19T17:14:13Z","data":{"session_id":"x","checks":[null,{"state":3,"reasons":[{}]}]}}`,
		`{"eventId":"550E8400-E29B-41D4-A716-446655440000","id":"550e8400-e29b-41d4-a716-446655440000","eventType":"kyb.state_updated","timestamp":"2025-06-19T17:14:13+02:00","data":{"user":{"id":"550e8400-e29b-41d4-a716-446655440001"},"state":"light"}}`,
		`{"id":"550e8400-e29b-41d4-a716-446655440000","event":"kyc_expiration_warning","timestamp":"0001-01-01T00:00:00Z","data":{"entity_type":"related_party","related_party":{"id":null},"expirationDate":"2026-02-29","daysRemaining":1e3}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ralio.Parse(body)
		if err != nil {
			var verr *ralio.ValidationError
			if !errors.As(err, &verr) || len(verr.Fields) == 0 {
				t.Fatalf("Parse error %v (%T) is not a non-empty *ValidationError", err, err)
			}
			if _, again := ralio.Parse(body); again.Error() != err.Error() {
				t.Fatalf("Parse is not deterministic: %q then %q", err, again)
			}
			return
		}
		if !isCanonicalUUID(ev.ID) || ev.Type == "" || ev.Timestamp.IsZero() {
			t.Fatalf("Parse accepted an incomplete envelope: %+v", ev)
		}
		if !ev.Known {
			return
		}
		if ev.Data == nil || !isCanonicalUUID(ev.Subject.ID) || ev.Subject.Type == "" {
			t.Fatalf("Parse accepted a %s without data or subject: %+v", ev.Type, ev)
		}
		switch ev.Type {
		case ralio.TypeSessionFailed, ralio.TypeSessionVerified, ralio.TypeSessionManualReview,
			ralio.TypeSessionExpired, ralio.TypeRelatedPartyInvited:
			if !isCanonicalUUID(ev.SessionID) {
				t.Fatalf("Parse accepted a %s without session: %+v", ev.Type, ev)
			}
		case ralio.TypeKYCStateUpdated, ralio.TypeKYBStateUpdated:
			if ev.Level != ralio.LevelRegular && ev.Level != ralio.LevelLight {
				t.Fatalf("Parse accepted level %q", ev.Level)
			}
		}
		for _, c := range ev.Checks {
			if c.Type == "" || c.State == "" {
				t.Fatalf("Parse accepted check %+v", c)
			}
			for _, r := range c.Reasons {
				if r.Code == "" {
					t.Fatalf("Parse accepted reason %+v", r)
				}
			}
		}
	})
}

// encodings returns every spelling of a MAC that Verify must accept, before
// prefixes, case and white space.
func encodings(mac []byte) []string {
	return []string{
		hex.EncodeToString(mac),
		base64.StdEncoding.EncodeToString(mac),
		base64.RawStdEncoding.EncodeToString(mac),
		base64.URLEncoding.EncodeToString(mac),
		base64.RawURLEncoding.EncodeToString(mac),
	}
}

func FuzzVerify(f *testing.F) {
	for i, b := range testdataBodies(f) {
		f.Add(b, "s3cret", ralio.Sign(b, "s3cret"))
		f.Add(b, "k", " sha256="+strings.ToUpper(ralio.Sign(b, "other")))
		f.Add(b, strings.Repeat("x", 70*i), "garbage")
	}
	f.Add([]byte{}, "", "")
	f.Add([]byte("{}"), "s", "sha256=dGhpcyBpcyBub3QgYSBtYWMgb2YgYW55dGhpbmcgYXQgYWxs")
	f.Fuzz(func(t *testing.T, body []byte, secret, header string) {
		v, err := ralio.NewVerifier(secret)
		if secret == "" {
			if err == nil {
				t.Fatal("NewVerifier accepted an empty secret")
			}
			return
		}
		if err != nil {
			t.Fatalf("NewVerifier(%q): %v", secret, err)
		}
		h := hmac.New(sha256.New, []byte(secret))
		h.Write(body)
		mac := h.Sum(nil)
		for _, sig := range encodings(mac) {
			if err := v.Verify(body, sig); err != nil {
				t.Fatalf("Verify(%q) = %v for a correct MAC", sig, err)
			}
		}
		if err := v.Verify(body, ralio.Sign(body, secret)); err != nil {
			t.Fatalf("Verify(Sign) = %v", err)
		}

		err = v.Verify(body, header)
		switch {
		case err == nil:
			sig := strings.TrimSpace(header)
			if len(sig) >= 7 && strings.EqualFold(sig[:7], "sha256=") {
				sig = strings.TrimSpace(sig[7:])
			}
			ok := strings.EqualFold(sig, hex.EncodeToString(mac))
			for _, enc := range encodings(mac)[1:] {
				ok = ok || sig == enc
			}
			if !ok {
				t.Fatalf("Verify accepted %q, which is not the MAC %x", header, mac)
			}
			if err := v.Verify(append(body[:len(body):len(body)], 0), header); !errors.Is(err, ralio.ErrBadSignature) {
				t.Fatalf("Verify accepted %q for a longer body: %v", header, err)
			}
		case strings.TrimSpace(header) == "":
			if !errors.Is(err, ralio.ErrNoSignature) {
				t.Fatalf("Verify(%q) = %v, want ErrNoSignature", header, err)
			}
		case !errors.Is(err, ralio.ErrBadSignature):
			t.Fatalf("Verify(%q) = %v, want ErrBadSignature", header, err)
		}
	})
}
