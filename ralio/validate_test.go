package ralio

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"strconv"
	"testing"
)

// TestLookedUpNamesKept checks that every name decode.go looks up, in both
// spellings, is one that lookedUp lets the tree keep: a name missing there
// would be silently absent from every event.
func TestLookedUpNamesKept(t *testing.T) {
	t.Parallel()
	f, err := goparser.ParseFile(token.NewFileSet(), "decode.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	names := 0
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "field" && sel.Sel.Name != "subjectID" {
			return true
		}
		for _, arg := range call.Args {
			lit, ok := arg.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				continue
			}
			camel, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			names++
			for _, name := range []string{camel, oldSnakeCase(camel)} {
				if !lookedUp([]byte(name)) {
					t.Errorf("decode.go looks up %q, which lookedUp does not keep", name)
				}
			}
		}
		return true
	})
	if names < 30 {
		t.Errorf("found %d names looked up in decode.go: is the lookup still p.field?", names)
	}
}
