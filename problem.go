package kycd

// Problem is an RFC 9457 problem document: how kycd answers every error,
// and how it records why it refused a body it quarantined.
type Problem struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Errors   []FieldProblem `json:"errors,omitempty"`
}

// FieldProblem names one bad field of a refused body.
type FieldProblem struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}
