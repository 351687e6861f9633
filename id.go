package kycd

import "github.com/google/uuid"

// ParseID is id as kycd keeps it: every id of kycd's records (events,
// sessions, subjects, notifications, deliveries, quarantined bodies) is a
// UUID, kept in canonical lower case, so any spelling uuid.Parse reads
// finds it. EINVALID for anything else.
func ParseID(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return "", Errorf(EINVALID, "id %q: want a UUID", id)
	}
	return u.String(), nil
}
