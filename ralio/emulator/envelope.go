package emulator

import (
	"encoding/json"
	"time"

	"github.com/kycd/kycd/ralio"
)

// The envelope of each generation. Field order follows Ralio's examples.
type (
	envelopeAB struct {
		ID        string `json:"id"`
		Event     string `json:"event"`
		Timestamp string `json:"timestamp"`
		Data      any    `json:"data"`
	}
	envelopeC struct {
		EventID   string `json:"eventId"`
		EventType string `json:"eventType"`
		Timestamp string `json:"timestamp"`
		Data      any    `json:"data"`
	}
)

// dataFunc builds an event's data object in the spelling of a generation
// (A, B or C, never mixed).
type dataFunc func(Generation) map[string]any

// encode puts data in the envelope of generation g.
func encode(g Generation, id, typ string, at time.Time, data dataFunc) []byte {
	var env any = envelopeAB{ID: id, Event: typ, Timestamp: formatTime(at), Data: data(g)}
	if g == GenerationC {
		env = envelopeC{EventID: id, EventType: typ, Timestamp: formatTime(at), Data: data(g)}
	}
	b, err := json.Marshal(env)
	if err != nil {
		panic(err) // maps of strings, numbers and raw JSON always encode
	}
	return b
}

// subjectFields names a subject the way generation g does: A has no
// entityType (a related party is known by its relatedPartyId alone); B and
// C name the kind. snake spells the ids user_id / related_party_id, as
// generation A's kyc_state_updated does.
func subjectFields(g Generation, m map[string]any, s ralio.Subject, snake bool) {
	key := "userId"
	if s.Type == ralio.SubjectRelatedParty {
		key = "relatedPartyId"
	}
	if snake {
		key = map[string]string{"userId": "user_id", "relatedPartyId": "related_party_id"}[key]
	}
	m[key] = s.ID
	if g != GenerationA {
		m["entityType"] = s.Type
	}
}

// sessionData is the data of an outcome event. Generation A always carries
// checks (required there) with string states; B and C carry them when
// there are any, with states 1 and 2 and each reason's category.
func sessionData(sessionID string, subject ralio.Subject, checks []check) dataFunc {
	return func(g Generation) map[string]any {
		m := map[string]any{"sessionId": sessionID}
		subjectFields(g, m, subject, false)
		if g == GenerationA || len(checks) > 0 {
			m["checks"] = webhookChecks(g, checks)
		}
		return m
	}
}

func webhookChecks(g Generation, checks []check) []any {
	out := make([]any, 0, len(checks))
	for _, c := range checks {
		var state any = c.state
		if g != GenerationA {
			state = map[string]int{ralio.CheckValidated: 1, ralio.CheckRefused: 2}[c.state]
		}
		reasons := make([]any, 0, len(c.reasons))
		for _, r := range c.reasons {
			rm := map[string]any{"type": r.typ, "code": r.code, "message": r.message}
			if g != GenerationA && r.category != "" {
				rm["category"] = r.category
			}
			reasons = append(reasons, rm)
		}
		out = append(out, map[string]any{"type": c.typ, "state": state, "data": c.data, "reasons": reasons})
	}
	return out
}

// levelData is the data of kyc_state_updated; generation A spells it in
// snake_case (kyc_id, user_id), as Ralio's 2025 page does.
func levelData(subject ralio.Subject, kycID int64, level string) dataFunc {
	return func(g Generation) map[string]any {
		m := map[string]any{"state": level}
		if g == GenerationA {
			m["kyc_id"] = kycID
		} else {
			m["kycId"] = kycID
		}
		subjectFields(g, m, subject, g == GenerationA)
		return m
	}
}

// kybLevelData is the data of kyb_state_updated.
func kybLevelData(uid string, kybID int64, level string) dataFunc {
	return func(g Generation) map[string]any {
		if g == GenerationA {
			return map[string]any{"kyb_id": kybID, "user_id": uid, "state": level}
		}
		return map[string]any{"kybId": kybID, "userId": uid, "state": level}
	}
}

// expirationData is the data of kyc_expiration_warning.
func expirationData(subject ralio.Subject, kycID int64, date string, days int, action string) dataFunc {
	return func(g Generation) map[string]any {
		m := map[string]any{"kycId": kycID, "expirationDate": date, "daysRemaining": days, "action": action}
		subjectFields(g, m, subject, false)
		return m
	}
}

// invitationData is the data of related_party.kyc_session_created, the same
// in every generation (only the envelope differs).
func invitationData(b *business, businessName string, party map[string]any, s *session) dataFunc {
	return func(Generation) map[string]any {
		return map[string]any{
			"businessUser": map[string]any{"id": b.id, "name": businessName},
			"relatedParty": party,
			"kycSession": map[string]any{
				"id":        s.id,
				"provider":  "emulator",
				"url":       s.hostedURL,
				"expiresAt": formatTime(s.expiresAt),
			},
		}
	}
}
