package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestEverySettingIsRead fails for a field of the config schema that the
// running program never reads: a setting that is validated and documented
// but does nothing.
//
// It walks Config's leaf fields (yaml paths; map entries through their
// element type; not what Load itself applies, see appliedByLoad),
// type-checks the non-test files of every package of the module that
// cmd/baton is built from, config excepted, and requires for each field a selector expression that reads it
// (an assignment's left-hand side is a write, not a read).
//
// Reads inside config count only inside an accessor: an exported method of
// Config other than Validate (RouteFor, CredentialsFile, ...), together with
// the config functions it calls, is a read of what it reads wherever the
// program calls it. Validation, decoding and printing read every field and
// consume none.
func TestEverySettingIsRead(t *testing.T) {
	start := time.Now()
	consumers, cfgPkg := loadProgram(t)
	read := map[string]bool{}      // field key → read by the program
	accessors := map[string]bool{} // config functions the program calls
	for _, p := range consumers {
		for _, f := range p.files {
			collectReads(p.info, f, read, func(fn *types.Func) {
				if fn.Pkg() != nil && fn.Pkg().Path() == configPath {
					accessors[fn.FullName()] = true
				}
			})
		}
	}
	// The reads of config's accessors, closed over the config functions
	// they call.
	fnReads, fnCalls := map[string]map[string]bool{}, map[string][]string{}
	for _, f := range cfgPkg.files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			name := cfgPkg.info.Defs[fd.Name].(*types.Func).FullName()
			fnReads[name] = map[string]bool{}
			collectReads(cfgPkg.info, fd.Body, fnReads[name], func(fn *types.Func) {
				if fn.Pkg() != nil && fn.Pkg().Path() == configPath {
					fnCalls[name] = append(fnCalls[name], fn.FullName())
				}
			})
		}
	}
	isAccessor := func(fullName string) bool {
		recv, method, ok := strings.Cut(fullName, ").")
		return ok && (recv == "("+configPath+".Config" || recv == "(*"+configPath+".Config") &&
			method != "Validate" && token.IsExported(method)
	}
	var visit func(string)
	seen := map[string]bool{}
	visit = func(fn string) {
		if seen[fn] {
			return
		}
		seen[fn] = true
		for k := range fnReads[fn] {
			read[k] = true
		}
		for _, c := range fnCalls[fn] {
			visit(c)
		}
	}
	for fn := range accessors {
		if isAccessor(fn) {
			visit(fn)
		}
	}

	var unread []string
	for _, leaf := range schemaLeaves(reflect.TypeFor[Config](), "") {
		if !read[leaf.key] {
			unread = append(unread, fmt.Sprintf("%s (%s)", leaf.path, strings.TrimPrefix(leaf.key, configPath+".")))
		}
	}
	for _, u := range unread {
		t.Errorf("%s is in the config schema but nothing in the running program reads it: "+
			"make it take effect (and test that through a running relay), or remove it from "+
			"config.Config, default.yaml, validation and the docs", u)
	}
	t.Logf("checked in %v", time.Since(start).Round(time.Millisecond))
}

const configPath = "github.com/baton-relay/baton/config"

// appliedByLoad are the settings Load itself puts into effect: their
// contents end up in the maps the program reads (TestOverlay and
// TestProjectFiles show that).
var appliedByLoad = map[string]bool{
	"defaults":      true, // templates merged into every map entry
	"project_files": true, // read into projects
}

type leaf struct {
	path string // yaml path, map keys as "*"
	key  string // package path.Type.Field of the Go field
}

// schemaLeaves returns the leaf fields of struct type t: fields that are
// not structs or maps of structs, whose contents are walked instead.
func schemaLeaves(t reflect.Type, path string) []leaf {
	var out []leaf
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if kinds := choices(f.Type); name == "" && kinds != nil {
			for _, k := range kinds { // an inline choice: each kind's keys
				out = append(out, schemaLeaves(k, path)...)
			}
			continue
		}
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		p := joinPath(path, name)
		if appliedByLoad[p] {
			continue
		}
		ft := f.Type
		switch {
		case ft.Kind() == reflect.Struct:
			out = append(out, schemaLeaves(ft, p)...)
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct:
			out = append(out, schemaLeaves(ft.Elem(), p+".*")...)
		default:
			out = append(out, leaf{path: p, key: t.PkgPath() + "." + t.Name() + "." + f.Name})
		}
	}
	return out
}

// collectReads records in read the config fields that selector expressions
// under n read, and passes every function or method used to used.
func collectReads(info *types.Info, n ast.Node, read map[string]bool, used func(*types.Func)) {
	written := map[ast.Expr]bool{}
	ast.Inspect(n, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if n.Tok == token.ASSIGN || n.Tok == token.DEFINE {
				for _, l := range n.Lhs {
					written[ast.Unparen(l)] = true
				}
			}
		case *ast.IncDecStmt:
			written[ast.Unparen(n.X)] = true
		case *ast.SelectorExpr:
			sel := info.Selections[n]
			if sel != nil && sel.Kind() == types.FieldVal && !written[n] {
				if k := fieldKey(sel); strings.HasPrefix(k, configPath+".") {
					read[k] = true
				}
			}
		case *ast.Ident:
			if fn, ok := info.Uses[n].(*types.Func); ok {
				used(fn)
			}
		}
		return true
	})
}

// fieldKey names the field a selection ends at as package path.Type.Field,
// following embedded fields.
func fieldKey(sel *types.Selection) string {
	t := sel.Recv()
	idx := sel.Index()
	for i, j := range idx {
		if p, ok := types.Unalias(t).(*types.Pointer); ok {
			t = p.Elem()
		}
		st, ok := t.Underlying().(*types.Struct)
		if !ok {
			return ""
		}
		if i == len(idx)-1 {
			named, ok := types.Unalias(t).(*types.Named)
			if !ok || named.Obj().Pkg() == nil {
				return ""
			}
			return named.Obj().Pkg().Path() + "." + named.Obj().Name() + "." + st.Field(j).Name()
		}
		t = st.Field(j).Type()
	}
	return ""
}

type checkedPkg struct {
	path  string
	files []*ast.File
	info  *types.Info
}

// loadProgram type-checks, from source, config and every package of the
// module that cmd/baton is built from; imports come from the export data
// `go list -export` leaves in the build cache.
func loadProgram(t *testing.T) (consumers []checkedPkg, cfg checkedPkg) {
	t.Helper()
	module, _ := strings.CutSuffix(configPath, "/config")
	cmd := exec.Command("go", "list", "-export", "-deps", "-json=ImportPath,Dir,GoFiles,CgoFiles,Export,Module", module+"/cmd/baton")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -export: %v\n%s", err, stderr.Bytes())
	}
	type listed struct {
		ImportPath, Dir, Export string
		GoFiles, CgoFiles       []string
		Module                  *struct{ Path string }
	}
	exports := map[string]string{}
	var ours []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listed
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		exports[p.ImportPath] = p.Export
		if p.Module != nil && p.Module.Path == module {
			ours = append(ours, p)
		}
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok || f == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	for _, p := range ours {
		if len(p.CgoFiles) > 0 {
			t.Fatalf("%s has cgo files; teach this test to check them", p.ImportPath)
		}
		cp := checkedPkg{path: p.ImportPath, info: &types.Info{
			Selections: map[*ast.SelectorExpr]*types.Selection{},
			Uses:       map[*ast.Ident]types.Object{},
			Defs:       map[*ast.Ident]types.Object{},
		}}
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			cp.files = append(cp.files, f)
		}
		conf := types.Config{Importer: imp.(types.ImporterFrom)}
		if _, err := conf.Check(p.ImportPath, fset, cp.files, cp.info); err != nil {
			t.Fatalf("type-check %s: %v", p.ImportPath, err)
		}
		if p.ImportPath == configPath {
			cfg = cp
		} else {
			consumers = append(consumers, cp)
		}
	}
	if cfg.info == nil || len(consumers) == 0 {
		t.Fatalf("go list found no config package or no consumers of it (%d packages of %s)", len(ours), module)
	}
	return consumers, cfg
}
