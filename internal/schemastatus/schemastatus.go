// Package schemastatus says how a database's schema stands against the
// migrations a build carries, from goose's record of them: written once
// for both stores, which only say whether goose's table exists (asking
// goose would create it).
package schemastatus

import (
	"context"
	"path/filepath"

	"github.com/pressly/goose/v3"

	"github.com/kycd/kycd"
)

// Read is the schema's status against p's migrations. exists says whether
// goose's version table is there; without it nothing is applied and every
// migration is pending. A database migrated by a newer build counts its
// version too, and has nothing pending.
func Read(ctx context.Context, p *goose.Provider, exists bool) (kycd.Schema, error) {
	sources := p.ListSources()
	out := kycd.Schema{Latest: sources[len(sources)-1].Version, Pending: len(sources)}
	for _, src := range sources {
		out.Versions = append(out.Versions, src.Version)
	}
	if !exists {
		return out, nil
	}
	status, err := p.Status(ctx)
	if err != nil {
		return kycd.Schema{}, err
	}
	out.Pending = 0
	for _, m := range status {
		if m.State == goose.StateApplied {
			out.Version = max(out.Version, m.Source.Version)
		} else {
			out.Pending++
		}
	}
	if v, err := p.GetDBVersion(ctx); err == nil {
		out.Version = max(out.Version, v) // a newer build's migrations count too
	}
	out.Newer = out.Version > out.Latest
	return out, nil
}

// To moves p's database to schema version: down (goose's down migrations,
// newest applied first) when it is above, up when below. The caller
// checks version against the migrations p carries.
func To(ctx context.Context, p *goose.Provider, version int64) ([]kycd.Migrated, error) {
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return nil, err
	}
	var rs []*goose.MigrationResult
	switch {
	case version < current:
		rs, err = p.DownTo(ctx, version)
	case version > current:
		rs, err = p.UpTo(ctx, version)
	}
	return results(rs), err
}

// results is what goose's results of a run say.
func results(rs []*goose.MigrationResult) []kycd.Migrated {
	out := make([]kycd.Migrated, 0, len(rs))
	for _, r := range rs {
		out = append(out, kycd.Migrated{Version: r.Source.Version, Name: filepath.Base(r.Source.Path), Down: r.Direction == "down"})
	}
	return out
}
