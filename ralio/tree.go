package ralio

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// tree is the body's JSON values, read in one pass of a tokenizer. Parse
// used to decode the body into a map and then each nested object into a map
// again, which scanned and copied every level once more: most of its time.
// A node only marks where a value lies in the body; bytes are copied out of
// it only for what the Event keeps.
type tree struct {
	body  []byte
	nodes []node // nodes[0] is the top-level value
	// names holds the member names that the body escapes, unescaped.
	names []byte
}

// node is one JSON value of the body. Nodes are in the body's order, each
// container before its contents, so the first member or element of
// container k is node k+1 (see first), and the others follow through next;
// 0 ends the list, since the top-level value is nobody's member.
type node struct {
	start, end int // the value in body
	parent     int // -1 for the top-level value
	index      int // an element's position in its array
	// A member's name, in body, or in names if escaped; empty for an element.
	nameStart, nameEnd int
	escaped            bool
	next               int
}

// read builds t from body. Of an object it keeps only the members whose
// name keep accepts; the others are checked to be JSON and skipped, so that
// values nobody looks at cost no nodes, however large. All elements of a
// kept array are kept, since they are found by index.
//
// Its acceptance is encoding/json's: invalid UTF-8 and duplicate names are
// allowed, nesting is limited to 10000 levels. The error, a jsontext one,
// only says that body is not JSON.
func (t *tree) read(body []byte, keep func(name []byte) bool) error {
	t.body = body
	// The node count is unknown until the end. This fits Ralio's events
	// without growing; a large body may be mostly values that are skipped,
	// and grows the slice only if it is not.
	t.nodes = make([]node, 0, min(4+len(body)/24, 64))
	d := jsontext.NewDecoder(bytes.NewBuffer(body),
		jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if err := t.value(d, node{parent: -1}, keep); err != nil {
		return err
	}
	switch _, err := d.ReadToken(); {
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		return errors.New("jsontext: a second value after the top-level value")
	default:
		return err
	}
}

// value reads the next value of d, up to its end, into a new node n that
// already says where the value is in its container.
func (t *tree) value(d *jsontext.Decoder, n node, keep func(name []byte) bool) error {
	i := len(t.nodes)
	t.nodes = append(t.nodes, n)
	switch kind := d.PeekKind(); kind {
	case '{', '[':
		if _, err := d.ReadToken(); err != nil {
			return err
		}
		start := int(d.InputOffset()) - 1
		closing := jsontext.Kind('}')
		if kind == '[' {
			closing = ']'
		}
		prev := 0
		for index := 0; d.PeekKind() != closing; index++ {
			member := node{parent: i, index: index}
			if kind == '{' {
				name, err := d.ReadValue()
				if err != nil {
					return err
				}
				end := int(d.InputOffset())
				member.nameStart, member.nameEnd = end-len(name)+1, end-1
				unquoted := t.body[member.nameStart:member.nameEnd]
				if needsUnquote(name) {
					unquoted, _ = unquote(name)
					member.escaped = true
				}
				if !keep(unquoted) {
					if err := d.SkipValue(); err != nil {
						return err
					}
					continue
				}
				if member.escaped {
					member.nameStart = len(t.names)
					t.names = append(t.names, unquoted...)
					member.nameEnd = len(t.names)
				}
			}
			child := len(t.nodes)
			if err := t.value(d, member, keep); err != nil {
				return err
			}
			if prev != 0 {
				t.nodes[prev].next = child
			}
			prev = child
		}
		if _, err := d.ReadToken(); err != nil {
			return err
		}
		t.nodes[i].start, t.nodes[i].end = start, int(d.InputOffset())
	default:
		v, err := d.ReadValue()
		if err != nil {
			return err
		}
		end := int(d.InputOffset())
		t.nodes[i].start, t.nodes[i].end = end-len(v), end
	}
	return nil
}

// needsUnquote reports whether a quoted member name differs from its
// bytes: it has escapes, or invalid UTF-8 that encoding/json replaces (in
// map keys as in strings, which unquote decodes alike).
func needsUnquote(quoted []byte) bool {
	in := quoted[1 : len(quoted)-1]
	return bytes.IndexByte(in, '\\') >= 0 || !utf8.Valid(in)
}

// first returns the first member or element of container k, or 0.
func (t *tree) first(k int) int {
	if k+1 < len(t.nodes) && t.nodes[k+1].parent == k {
		return k + 1
	}
	return 0
}

// raw returns the bytes of node k as they are in the body.
func (t *tree) raw(k int) []byte {
	return t.body[t.nodes[k].start:t.nodes[k].end]
}

// name returns the member name of node k, unescaped.
func (t *tree) name(k int) []byte {
	n := &t.nodes[k]
	if n.escaped {
		return t.names[n.nameStart:n.nameEnd]
	}
	return t.body[n.nameStart:n.nameEnd]
}

// path returns the JSON path of node k, as FieldError.Field names it.
func (t *tree) path(k int) string {
	n := &t.nodes[k]
	switch {
	case n.parent < 0:
		return ""
	case t.body[t.nodes[n.parent].start] == '[':
		return t.path(n.parent) + "[" + strconv.Itoa(n.index) + "]"
	}
	return join(t.path(n.parent), string(t.name(k)))
}

// join appends a member name to a path.
func join(path, name string) string {
	switch {
	case name == "":
		return path
	case path == "":
		return name
	}
	return path + "." + name
}
