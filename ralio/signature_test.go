package ralio_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/kycd/kycd/ralio"
)

func TestSign(t *testing.T) {
	t.Parallel()
	// RFC 4231 test case 2.
	got := ralio.Sign([]byte("what do ya want for nothing?"), "Jefe")
	const want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	body := readTestdata(t, "a-kyc_session_failed.json")
	h := hmac.New(sha256.New, []byte("s3cret"))
	h.Write(body)
	sum := h.Sum(nil)
	hexSig := hex.EncodeToString(sum)

	tampered := append([]byte(nil), body...)
	tampered[len(tampered)/2] ^= 1

	tests := []struct {
		name    string
		secrets []string
		body    []byte
		sig     string
		want    error
	}{
		{"hex lower case", []string{"s3cret"}, body, hexSig, nil},
		{"hex upper case", []string{"s3cret"}, body, strings.ToUpper(hexSig), nil},
		{"Sign", []string{"s3cret"}, body, ralio.Sign(body, "s3cret"), nil},
		{"base64", []string{"s3cret"}, body, base64.StdEncoding.EncodeToString(sum), nil},
		{"base64 unpadded", []string{"s3cret"}, body, base64.RawStdEncoding.EncodeToString(sum), nil},
		{"base64 URL-safe", []string{"s3cret"}, body, base64.URLEncoding.EncodeToString(sum), nil},
		{"base64 URL-safe unpadded", []string{"s3cret"}, body, base64.RawURLEncoding.EncodeToString(sum), nil},
		{"sha256= prefix", []string{"s3cret"}, body, "sha256=" + hexSig, nil},
		{"SHA256= prefix and base64", []string{"s3cret"}, body, "SHA256=" + base64.StdEncoding.EncodeToString(sum), nil},
		{"surrounding white space", []string{"s3cret"}, body, " \t" + hexSig + " ", nil},
		{"second secret of a rotation", []string{"new", "s3cret"}, body, hexSig, nil},
		{"first secret of a rotation", []string{"s3cret", "old"}, body, hexSig, nil},
		{"wrong secret", []string{"other"}, body, hexSig, ralio.ErrBadSignature},
		{"wrong secrets in rotation", []string{"a", "b", "c"}, body, hexSig, ralio.ErrBadSignature},
		{"tampered body", []string{"s3cret"}, tampered, hexSig, ralio.ErrBadSignature},
		{"body with a trailing newline", []string{"s3cret"}, append(body[:len(body):len(body)], '\n'), hexSig, ralio.ErrBadSignature},
		{"empty header", []string{"s3cret"}, body, "", ralio.ErrNoSignature},
		{"blank header", []string{"s3cret"}, body, "  \t", ralio.ErrNoSignature},
		{"garbage header", []string{"s3cret"}, body, "not a signature", ralio.ErrBadSignature},
		{"prefix only", []string{"s3cret"}, body, "sha256=", ralio.ErrBadSignature},
		{"truncated hex", []string{"s3cret"}, body, hexSig[:63], ralio.ErrBadSignature},
		{"hex one digit changed", []string{"s3cret"}, body, flipFirst(hexSig), ralio.ErrBadSignature},
		{"hex of a SHA-1 length", []string{"s3cret"}, body, hexSig[:40], ralio.ErrBadSignature},
		{"base64 with a line break", []string{"s3cret"}, body, base64.StdEncoding.EncodeToString(sum)[:20] + "\n" + base64.StdEncoding.EncodeToString(sum)[20:], ralio.ErrBadSignature},
		{"other scheme prefix", []string{"s3cret"}, body, "sha1=" + hexSig, ralio.ErrBadSignature},
		{"two signatures", []string{"s3cret"}, body, hexSig + "," + hexSig, ralio.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := ralio.NewVerifier(tt.secrets...)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(tt.body, tt.sig); !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func flipFirst(hexSig string) string {
	if hexSig[0] == '0' {
		return "1" + hexSig[1:]
	}
	return "0" + hexSig[1:]
}

func TestNewVerifier(t *testing.T) {
	t.Parallel()
	for _, secrets := range [][]string{nil, {""}, {"a", ""}} {
		if _, err := ralio.NewVerifier(secrets...); err == nil {
			t.Errorf("NewVerifier(%q) succeeded, want an error", secrets)
		}
	}
	if _, err := ralio.NewVerifier("a", "b"); err != nil {
		t.Errorf("NewVerifier: %v", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	body := readTestdata(b, "a-kyc_session_failed.json")
	v, err := ralio.NewVerifier("new", "old")
	if err != nil {
		b.Fatal(err)
	}
	sig := ralio.Sign(body, "old")
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(body, sig); err != nil {
			b.Fatal(err)
		}
	}
}
