package kycd

import "context"

// Tx is one store transaction: small reads and writes that each do just what
// they are told, composed by the application layer (internal/app) around the
// domain's rules, as River's core composes its driver's ExecutorTx. A store
// decides nothing inside it: no method of Tx chooses, filters by a rule or
// builds a domain answer. Each area of kycd adds the operations it needs in
// its own interface below, next to nothing else.
//
// Commit ends the transaction; Rollback after Commit does nothing, so
// callers defer it. Errors carry this package's codes, as Store's do.
type Tx interface {
	AuditTx
	DeliveryTx
	SinkTx
	QuarantineTx
	SubjectTx
	ProjectionResetTx

	// Commit makes the transaction's writes durable.
	Commit(ctx context.Context) error
	// Rollback undoes the transaction's writes; after Commit it does
	// nothing and returns nil.
	Rollback(ctx context.Context) error
}

// AuditTx writes the audit trail inside a transaction, so an action and its
// entry commit together.
type AuditTx interface {
	// AddAudit appends e to the audit trail and sets its ID.
	AddAudit(ctx context.Context, e *AuditEntry) error
}

// DeliveryTx reads and writes deliveries, their attempts and the actions
// operators took on them.
type DeliveryTx interface{}

// SinkTx reads and writes the registered sinks.
type SinkTx interface{}

// QuarantineTx reads and writes quarantined bodies.
type QuarantineTx interface{}

// SubjectTx reads and writes what kycd keeps about a subject, for export,
// erasure and retention.
type SubjectTx interface{}

// ProjectionResetTx empties the projection for a rebuild.
type ProjectionResetTx interface{}
