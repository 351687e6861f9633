package app

import (
	"context"
	"slices"

	"github.com/kycd/kycd"
)

// ResolveSubject finds the subject of id, of type typ when given: EINVALID
// for a type that is none of kycd's, ENOTFOUND for a subject kycd does not
// know. A UUID is taken in any case (kycd keeps canonical lower case).
// When one id is known under several types and typ is empty, the first by
// type name is taken. Every read and change of a subject (get, export,
// erase) resolves it here.
func (s *Service) ResolveSubject(ctx context.Context, id, typ string) (kycd.SubjectRef, error) {
	sub, _, err := s.resolveSubject(ctx, id, typ)
	if err != nil {
		return kycd.SubjectRef{}, err
	}
	return sub, nil
}

// resolveSubject is ResolveSubject, which also says whether id is known
// under any type; on ENOTFOUND, sub is the asked one (typ and the
// canonical id).
func (s *Service) resolveSubject(ctx context.Context, id, typ string) (sub kycd.SubjectRef, known bool, err error) {
	if err := kycd.CheckSubjectType(typ); err != nil {
		return kycd.SubjectRef{}, false, err
	}
	id = canonicalID(id)
	types, err := s.Store.SubjectTypes(ctx, id)
	if err != nil {
		return kycd.SubjectRef{}, false, err
	}
	known = len(types) > 0
	slices.Sort(types)
	if typ != "" {
		types = slices.DeleteFunc(types, func(t string) bool { return t != typ })
	}
	if len(types) == 0 {
		return kycd.SubjectRef{Type: typ, ID: id}, known, kycd.Errorf(kycd.ENOTFOUND, "subject %s not found", id)
	}
	return kycd.SubjectRef{Type: types[0], ID: id}, true, nil
}

// Subject returns a subject (ResolveSubject) with its level and sessions,
// newest status first.
func (s *Service) Subject(ctx context.Context, id, typ string) (*kycd.Subject, error) {
	ref, err := s.ResolveSubject(ctx, id, typ)
	if err != nil {
		return nil, err
	}
	sub, err := s.Store.Subject(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !sub.Recorded && len(sub.Sessions) == 0 {
		return nil, kycd.Errorf(kycd.ENOTFOUND, "subject %s not found", ref.ID)
	}
	sub.Sessions = nonNil(sub.Sessions)
	return sub, nil
}
