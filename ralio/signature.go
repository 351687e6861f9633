package ralio

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// SignatureHeader is the request header in which Ralio sends the signature.
const SignatureHeader = "X-Signature"

// Errors of Verifier.Verify.
var (
	ErrNoSignature  = errors.New("ralio: missing signature")
	ErrBadSignature = errors.New("ralio: signature does not match")
)

// Sign returns the hex-encoded HMAC-SHA256 of body keyed with secret: what
// Ralio sends in X-Signature. It is meant for tests and for sending sample
// events.
func Sign(body []byte, secret string) string {
	return hex.EncodeToString(mac(body, []byte(secret)))
}

func mac(body, secret []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(body)
	return h.Sum(nil)
}

// Verifier checks X-Signature against one or more secrets, so that a secret
// can be rotated without downtime: configure the new one beside the old one,
// switch Ralio over, then drop the old one. It is safe for concurrent use.
type Verifier struct {
	secrets [][]byte
}

// NewVerifier returns a Verifier that accepts a signature made with any of
// secrets. It fails if there is no secret or one of them is empty, since an
// empty key would make every signature easy to forge.
func NewVerifier(secrets ...string) (*Verifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("ralio: no webhook secret")
	}
	v := &Verifier{secrets: make([][]byte, len(secrets))}
	for i, s := range secrets {
		if s == "" {
			return nil, fmt.Errorf("ralio: webhook secret %d of %d is empty", i+1, len(secrets))
		}
		v.secrets[i] = []byte(s)
	}
	return v, nil
}

// Verify checks signature, the value of the X-Signature header, against the
// raw body. It returns nil if the signature is the HMAC-SHA256 of body under
// one of the secrets, ErrNoSignature if signature is blank, and
// ErrBadSignature otherwise.
//
// Ralio does not document the digest's encoding, so Verify accepts hex in
// either case and base64 (standard or URL-safe, padded or not), with an
// optional "sha256=" prefix and surrounding white space.
func (v *Verifier) Verify(body []byte, signature string) error {
	got, err := digest(signature)
	if err != nil {
		return err
	}
	// Every secret is tried, so the time taken does not tell which one
	// matched.
	match := false
	for _, s := range v.secrets {
		match = hmac.Equal(mac(body, s), got) || match
	}
	if !match {
		return ErrBadSignature
	}
	return nil
}

// WellFormed reports whether signature is spelled as Verify accepts a
// digest: one that some secret could have made, right or wrong.
func WellFormed(signature string) bool {
	_, err := digest(signature)
	return err == nil
}

// digest decodes the SHA-256 digest a signature header spells.
func digest(signature string) ([]byte, error) {
	sig := strings.TrimSpace(signature)
	if sig == "" {
		return nil, ErrNoSignature
	}
	if len(sig) >= 7 && strings.EqualFold(sig[:7], "sha256=") {
		sig = strings.TrimSpace(sig[7:])
	}
	// Base64 decoders skip line breaks; refusing them keeps one digest to
	// one accepted spelling per encoding.
	if strings.ContainsAny(sig, "\r\n") {
		return nil, ErrBadSignature
	}
	got, ok := decodeDigest(sig)
	if !ok {
		return nil, ErrBadSignature
	}
	return got, nil
}

// decodeDigest decodes a SHA-256 digest from hex or base64. The encodings
// cannot be confused: 32 bytes are 64 hex digits but 43 or 44 base64 ones.
func decodeDigest(s string) ([]byte, bool) {
	if len(s) == 2*sha256.Size {
		b, err := hex.DecodeString(s)
		return b, err == nil
	}
	for _, enc := range [...]*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		// Strict, so that one digest has one encoding in each alphabet.
		if b, err := enc.Strict().DecodeString(s); err == nil && len(b) == sha256.Size {
			return b, true
		}
	}
	return nil, false
}
