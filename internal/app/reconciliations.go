package app

import (
	"context"

	"github.com/kycd/kycd"
)

// Reconciliations returns the last runs of reconciliation (at most limit,
// kycd.PageLimit), newest first.
func (s *Service) Reconciliations(ctx context.Context, limit int) ([]*kycd.Reconciliation, error) {
	runs, err := s.Store.Reconciliations(ctx, kycd.PageLimit(limit))
	if err != nil {
		return nil, err
	}
	return nonNil(runs), nil
}
