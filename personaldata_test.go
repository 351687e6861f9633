package kycd_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kycd/kycd"
)

// Every view that may not show personal data leaves out what erasure
// removes, and only that.
func TestRedactPayload(t *testing.T) {
	n := kycd.Notification{ID: "n", Type: kycd.NotifySessionRejected, SessionID: "s",
		Invitation: &kycd.Invitation{Email: "ana@example.com"},
		Failures:   []kycd.Failure{{CheckType: "document-verification", Code: "C", Message: "Ana's passport", Guidance: "Try again"}},
		Expiration: &kycd.Expiration{Date: "2026-04-01", Action: "Call Ana"}}
	payload, _ := json.Marshal(n)
	erased, _, _ := kycd.ErasePayload(payload)
	shown, personal := kycd.RedactPayload(payload)
	if !personal || string(shown) != string(erased) {
		t.Errorf("RedactPayload = %s, %v; want what erasure leaves: %s", shown, personal, erased)
	}
	marked := string(kycd.RedactPayloadMarked(payload, "[not shown]"))
	for _, gone := range []string{"ana@example.com", "Ana's passport", "Call Ana"} {
		if strings.Contains(marked, gone) {
			t.Errorf("marked payload holds %q: %s", gone, marked)
		}
	}
	if !strings.Contains(marked, `"invitation":"[not shown]"`) || !strings.Contains(marked, `"guidance":"Try again"`) {
		t.Errorf("marked payload = %s, want the mark where the invitation was and the rest kept", marked)
	}
	plain := []byte(`{"id":"n2","type":"kyc.session.verified"}`)
	if got, personal := kycd.RedactPayload(plain); personal || string(got) != string(plain) {
		t.Errorf("a payload without personal data was changed: %s", got)
	}
	if got := kycd.RedactPayloadMarked(plain, "x"); string(got) != string(plain) {
		t.Errorf("a payload without personal data was marked: %s", got)
	}
	if n.Failures[0].Message == "" || n.Invitation == nil {
		t.Error("WithoutPersonalData changed its argument")
	}
}

// A receiver's answer that quotes a notification back keeps none of its
// personal data, as written or JSON-escaped.
func TestStripPersonal(t *testing.T) {
	payload := []byte(`{"id":"n","type":"kyc.session.invited","invitation":{"firstName":"Zoë","lastName":"O\"Brien","email":"zoe@example.com","verificationUrl":"https://v.example/x?a=1&b=2"},"failures":[{"checkType":"id","code":"X","message":"Name mismatch"}]}`)
	values := kycd.PersonalValues(payload)
	answer := `400: {"invitation":{"firstName":"Zoë","lastName":"O\"Brien","email":"zoe@example.com","verificationUrl":"https://v.example/x?a=1\u0026b=2"},"message":"Name mismatch","code":"X"}`
	got := kycd.StripPersonal(answer, values, "[personal data]")
	for _, v := range []string{"Zoë", "Brien", "zoe@example.com", "v.example", "Name mismatch"} {
		if strings.Contains(got, v) {
			t.Errorf("StripPersonal left %q in %s", v, got)
		}
	}
	if !strings.Contains(got, `"code":"X"`) || !strings.HasPrefix(got, "400: ") {
		t.Errorf("StripPersonal = %s, want the rest kept", got)
	}
}
