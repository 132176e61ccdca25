// govars lists, for each package directory given, the package-level string
// variables that `go build -ldflags -X` can set, the ones it cannot (consts,
// //go:embed variables, variables initialised by a non-constant expression),
// and every pkg.Name selector the package uses, so that crossbuild can tell
// which version variables exist, where, and whether any code reads them.
//
// It uses only the standard library (go/build picks the files the build
// would compile for the given GOOS, GOARCH and tags; go/parser reads them),
// so `go run` needs no module and no network. Output: one JSON document on
// stdout, {"packages": [...]}, in the order of the arguments.
//
// Usage: govars [-goos linux] [-goarch amd64] [-tags a,b] [-cgo] DIR...
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Var is one package-level variable or constant of string kind.
type Var struct {
	Name string `json:"name"`
	// Kind: "var" (-X can set it), "const", "embed" (//go:embed), "expr"
	// (initialised by something that is not a constant string expression),
	// "typed" (declared with a type other than string).
	Kind string `json:"kind"`
	// Value: the literal initial value of a "var" or "const", when it is one.
	Value string `json:"value,omitempty"`
	File  string `json:"file"`
	Line  int    `json:"line"`
	// Local: the package itself uses the name outside its declaration.
	Local bool `json:"local"`
}

// Package is what govars reports for one directory.
type Package struct {
	Dir   string `json:"dir"`
	Name  string `json:"name"`
	Error string `json:"error,omitempty"`
	Vars  []Var  `json:"vars"`
	// Refs: "<import path>.<Name>" for every selector on an imported package.
	Refs []string `json:"refs"`
}

func main() {
	goos := flag.String("goos", build.Default.GOOS, "GOOS of the build")
	goarch := flag.String("goarch", build.Default.GOARCH, "GOARCH of the build")
	tags := flag.String("tags", "", "comma-separated build tags")
	cgo := flag.Bool("cgo", false, "CGO_ENABLED=1")
	flag.Parse()

	ctx := build.Default
	ctx.GOOS, ctx.GOARCH, ctx.CgoEnabled = *goos, *goarch, *cgo
	if *tags != "" {
		ctx.BuildTags = strings.Split(*tags, ",")
	}
	out := struct {
		Packages []Package `json:"packages"`
	}{Packages: []Package{}}
	for _, dir := range flag.Args() {
		out.Packages = append(out.Packages, scan(&ctx, dir))
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "govars:", err)
		os.Exit(1)
	}
}

func scan(ctx *build.Context, dir string) Package {
	pkg := Package{Dir: dir, Vars: []Var{}, Refs: []string{}}
	bp, err := ctx.ImportDir(dir, 0)
	if err != nil {
		if _, ok := err.(*build.NoGoError); !ok {
			pkg.Error = err.Error()
		}
		return pkg
	}
	pkg.Name = bp.Name
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range bp.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			pkg.Error = err.Error()
			return pkg
		}
		files = append(files, f)
	}
	consts := stringConsts(files)
	declared := map[*ast.Ident]bool{}
	index := map[string]int{}
	for _, f := range files {
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || (gen.Tok != token.VAR && gen.Tok != token.CONST) {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					declared[id] = true
					if id.Name == "_" {
						continue
					}
					v, ok := classify(gen, vs, i, consts)
					if !ok {
						continue
					}
					pos := fset.Position(id.Pos())
					v.Name, v.File, v.Line = id.Name, filepath.Base(pos.Filename), pos.Line
					index[v.Name] = len(pkg.Vars)
					pkg.Vars = append(pkg.Vars, v)
				}
			}
		}
	}
	refs := map[string]bool{}
	for _, f := range files {
		imports := map[string]string{} // local name -> import path
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			name := path[strings.LastIndex(path, "/")+1:]
			if imp.Name != nil {
				name = imp.Name.Name
			}
			imports[name] = path
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok {
					if path, ok := imports[x.Name]; ok {
						refs[path+"."+n.Sel.Name] = true
						return false
					}
				}
			case *ast.Ident:
				if i, ok := index[n.Name]; ok && !declared[n] {
					pkg.Vars[i].Local = true
				}
			}
			return true
		})
	}
	for r := range refs {
		pkg.Refs = append(pkg.Refs, r)
	}
	sort.Strings(pkg.Refs)
	return pkg
}

// stringConsts: package-level constants whose value is a string literal.
func stringConsts(files []*ast.File) map[string]bool {
	found := map[string]bool{}
	for _, f := range files {
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if i < len(vs.Values) && isLit(vs.Values[i]) {
						found[id.Name] = true
					}
				}
			}
		}
	}
	return found
}

func isLit(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	return ok && lit.Kind == token.STRING
}

// constant: a string constant expression as the linker's -X accepts it
// (cmd/link: "initialized to a constant string expression").
func constant(e ast.Expr, consts map[string]bool) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return e.Kind == token.STRING
	case *ast.ParenExpr:
		return constant(e.X, consts)
	case *ast.BinaryExpr:
		return e.Op == token.ADD && constant(e.X, consts) && constant(e.Y, consts)
	case *ast.Ident:
		return consts[e.Name]
	}
	return false
}

func embedded(gen *ast.GenDecl, vs *ast.ValueSpec) bool {
	for _, doc := range []*ast.CommentGroup{vs.Doc, gen.Doc} {
		if doc == nil {
			continue
		}
		for _, c := range doc.List {
			if strings.HasPrefix(c.Text, "//go:embed") {
				return true
			}
		}
	}
	return false
}

func classify(gen *ast.GenDecl, vs *ast.ValueSpec, i int, consts map[string]bool) (Var, bool) {
	var value ast.Expr
	if i < len(vs.Values) {
		value = vs.Values[i]
	}
	typeName := ""
	if id, ok := vs.Type.(*ast.Ident); ok {
		typeName = id.Name
	}
	stringy := typeName == "string" || (vs.Type == nil && value != nil && constant(value, consts))
	v := Var{}
	if lit, ok := value.(*ast.BasicLit); ok && lit.Kind == token.STRING {
		v.Value, _ = strconv.Unquote(lit.Value)
	}
	if gen.Tok == token.CONST {
		if !stringy {
			return v, false
		}
		v.Kind = "const"
		return v, true
	}
	switch {
	case vs.Type != nil && typeName != "string":
		if value == nil {
			return v, false // var x int, var y []string: not a string at all
		}
		v.Kind = "typed"
	case embedded(gen, vs):
		v.Kind = "embed"
	case value == nil && typeName == "string":
		v.Kind = "var"
	case value != nil && constant(value, consts):
		v.Kind = "var"
	case value != nil && typeName == "string":
		v.Kind = "expr"
	default:
		return v, false // var x = f(): type unknown without type checking; not reported
	}
	return v, true
}
