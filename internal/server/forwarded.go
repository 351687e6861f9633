package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ParseTrustedProxies reads --trusted-proxies: addresses (192.0.2.7,
// 2001:db8::7) and networks in CIDR notation (10.0.0.0/8, fd00::/8).
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is neither an IP address nor a network in CIDR notation (e.g. 10.0.0.0/8, 192.0.2.7, fd00::/8)", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// forwarded makes a request that came through one of the trusted proxies
// look as if it came from the client the proxies name: its RemoteAddr
// becomes the client's address (without a port), so that the audit
// trail's "From", the logs and the per-peer body budget all see the
// client, not the proxy. A request from any other peer is left as it is,
// whatever its headers say.
func forwarded(trusted []netip.Prefix, next http.Handler) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if client, ok := forwardedClient(r.RemoteAddr, r.Header, trusted); ok {
			r = r.WithContext(r.Context()) // a copy: the server's own request stays as it came
			r.RemoteAddr = client.String()
		}
		next.ServeHTTP(w, r)
	})
}

// forwardedClient is the address a request from remote really came from,
// when remote is a trusted proxy and its X-Forwarded-For (or, without
// one, its Forwarded: RFC 7239) names a client. Each proxy appends the
// address it received the request from, so the list is walked from the
// right: the first address that is not itself a trusted proxy is the
// client; the addresses left of it are whatever that client claimed and
// are ignored. An entry that is not an address ("unknown", an obfuscated
// identifier, garbage) ends the walk at the proxy that wrote it. When
// every address is a trusted proxy, the left-most is taken.
//
// X-Forwarded-For comes first because it is what Caddy, nginx, HAProxy,
// Traefik and Go's httputil.ReverseProxy set; a proxy that sets only
// Forwarded passes on a client's X-Forwarded-For, so behind one remove
// that header (docs/configuring.md, "TLS and reverse proxies").
//
// Written by hand: the walk is a few lines, the RFC 7239 syntax a small
// tokenizer, and the libraries that do this (e.g. chi's RealIP) take the
// left-most address, which any client can set.
func forwardedClient(remote string, h http.Header, trusted []netip.Prefix) (netip.Addr, bool) {
	peer, ok := parseHop(remote)
	if !ok || !isTrusted(peer, trusted) {
		return netip.Addr{}, false
	}
	var hops []string
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, v := range xff {
			for hop := range strings.SplitSeq(v, ",") {
				hops = append(hops, strings.TrimSpace(hop))
			}
		}
	} else {
		for _, v := range h.Values("Forwarded") {
			hops = append(hops, forwardedFor(v)...)
		}
	}
	if len(hops) == 0 {
		return netip.Addr{}, false
	}
	client := peer
	for i := len(hops) - 1; i >= 0 && isTrusted(client, trusted); i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break
		}
		client = a
	}
	return client, client != peer
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop reads one address of a forwarding list, or a RemoteAddr: an
// IP address with or without a port, IPv6 in brackets when it has one.
func parseHop(s string) (netip.Addr, bool) {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	} else {
		s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// forwardedFor is the for= value of each element of a Forwarded header
// (RFC 7239, section 4), in order, unquoted; "" for an element without
// one, so the walk stops there. Quoted strings may hold commas and
// semicolons.
func forwardedFor(v string) []string {
	var out []string
	for _, elem := range splitQuoted(v, ',') {
		if strings.TrimSpace(elem) == "" {
			continue
		}
		value := ""
		for _, pair := range splitQuoted(elem, ';') {
			k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
				value = unquote(strings.TrimSpace(val))
			}
		}
		out = append(out, value)
	}
	return out
}

// splitQuoted splits s at sep outside double-quoted strings.
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unquote is a token or quoted-string's value (RFC 9110, section 5.6.4).
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' && i+1 < len(s)-1 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
