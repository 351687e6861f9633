package kycd

import (
	"net/url"
	"regexp"
)

// Redacted stands in for a secret that RedactURL removed.
const Redacted = "xxxxx"

// keptQueryValues are query parameters whose values name no secret: a NATS
// sink's subject prefix and stream creation, PostgreSQL's sslmode.
var keptQueryValues = map[string]bool{"subject": true, "create": true, "sslmode": true}

// RedactURL returns a sink or database URL fit to print, log or answer:
// the password of its userinfo replaced by xxxxx (or the whole userinfo,
// when it is a single token, as NATS and basic-auth tokens are), every
// query value but subject, create and sslmode replaced by xxxxx, the
// fragment dropped. Every caller that shows a URL passes it through here.
// A value that does not parse as a URL is not shown at all.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[URL not shown: it does not parse]"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), Redacted)
		} else {
			u.User = url.User(Redacted)
		}
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = Redacted
		} else {
			for k, vs := range q {
				if !keptQueryValues[k] {
					for i := range vs {
						vs[i] = Redacted
					}
				}
			}
			u.RawQuery = q.Encode()
		}
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// urlInText finds URLs inside free text such as an error message (Go's HTTP
// client writes the request's URL into its errors).
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.\-]*://[^\s"'<>]+`)

// RedactText returns s with every URL in it passed through RedactURL, for
// error messages that may quote a sink's or a database's URL.
func RedactText(s string) string {
	return urlInText.ReplaceAllStringFunc(s, RedactURL)
}
