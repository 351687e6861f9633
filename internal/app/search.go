package app

import (
	"context"
	"net/url"

	"github.com/kycd/kycd"
)

// searchLimit is how many records of each kind a search lists: an id
// prefix of 8 digits matches a handful; more means a longer one is needed.
const searchLimit = 10

// SearchResult is what a search by id found: the records of every kind
// whose id begins with Q, at most searchLimit of each, and the kinds that
// had more (Truncated: type more of the id).
type SearchResult struct {
	Q         string       `json:"q"`
	Items     []kycd.Found `json:"items"`
	Truncated []string     `json:"truncated"`
}

// Search finds the sessions, subjects, events, notifications, deliveries
// and quarantined bodies whose id is q, or begins with q (kycd.IDPrefix:
// at least kycd.MinIDPrefix hexadecimal digits; EINVALID otherwise), each
// with its page on the dashboard and its path in the API. It reads ids,
// types and states only, no personal data, so it is not audited and any
// role may call it.
func (s *Service) Search(ctx context.Context, q string) (*SearchResult, error) {
	prefix, _, err := kycd.IDPrefix(q)
	if err != nil {
		return nil, err
	}
	rows, err := s.Store.FindIDs(ctx, kycd.IDPrefixRange(prefix, searchLimit+1))
	if err != nil {
		return nil, err
	}
	res := &SearchResult{Q: prefix, Items: []kycd.Found{}, Truncated: []string{}}
	seen := map[string]int{}
	for _, kind := range kycd.FoundKinds {
		for _, f := range rows {
			if f.Kind != kind {
				continue
			}
			if seen[kind]++; seen[kind] > searchLimit {
				res.Truncated = append(res.Truncated, kind)
				break
			}
			f.Href, f.API = foundLinks(f)
			res.Items = append(res.Items, f)
		}
	}
	return res, nil
}

// foundLinks are the dashboard's page of f and the API path that reads it:
// an event opens on its session's page, marked; a notification on its
// session's page; events and quarantined bodies are read, without their
// bodies, at their summary path (the bodies at the admin's route); an
// event or a notification without a session (a level's) opens on its
// subject's page.
func foundLinks(f kycd.Found) (href, api string) {
	id := url.PathEscape(f.ID)
	switch f.Kind {
	case kycd.FoundSession:
		return "#/sessions/" + id, "/api/v1/sessions/" + id
	case kycd.FoundSubject:
		return subjectLinks(kycd.SubjectRef{Type: f.Type, ID: f.ID})
	case kycd.FoundEvent:
		switch {
		case f.SessionID != "":
			href = "#/sessions/" + url.PathEscape(f.SessionID) + "?event=" + id
		case !f.Subject.IsZero():
			href, _ = subjectLinks(f.Subject)
		default:
			href = "#/events/" + id
		}
		return href, "/api/v1/events/" + id + "/summary"
	case kycd.FoundNotification:
		if f.SessionID != "" {
			sid := url.PathEscape(f.SessionID)
			return "#/sessions/" + sid + "?notification=" + id, "/api/v1/sessions/" + sid + "/notifications"
		}
		return subjectLinks(f.Subject)
	case kycd.FoundDelivery:
		return "#/deliveries/" + id, "/api/v1/deliveries/" + id
	default:
		return "#/quarantine/" + id, "/api/v1/quarantine/" + id + "/summary"
	}
}

func subjectLinks(sub kycd.SubjectRef) (href, api string) {
	if sub.IsZero() {
		return "#/deliveries", "/api/v1/deliveries"
	}
	q := url.PathEscape(sub.ID) + "?type=" + url.QueryEscape(sub.Type)
	return "#/subjects/" + q, "/api/v1/subjects/" + q
}
