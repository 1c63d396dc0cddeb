package config

import (
	"errors"
	"strings"
	"testing"
)

// TestDecodeFile: another format decoded with the config decoder gets
// every unknown key and type error at its line, positions of what it
// decoded, Raw subtrees as written and ${} references unexpanded.
func TestDecodeFile(t *testing.T) {
	var v struct {
		Name  string   `yaml:"name"`
		Size  ByteSize `yaml:"size"`
		Extra Raw      `yaml:"extra"`
		List  []int    `yaml:"list"`
	}
	at, err := DecodeFile("f.yml", []byte("name: ${SECRET}\nsize: 1KiB\nextra: {a: 1}\nlist: [1, x]\nnmae: 2\n"), &v)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 2 ||
		errs[0].String() != `f.yml:4: list[1]: expected an integer, got "x"` ||
		!strings.HasPrefix(errs[1].String(), `f.yml:5: nmae: unknown key (did you mean "name"?)`) {
		t.Fatalf("problems:\n%v", err)
	}
	if v.Name != "${SECRET}" || v.Size != 1024 || v.Extra.Node == nil || v.Extra.Node.Line != 3 {
		t.Errorf("decoded %+v", v)
	}
	if at["size"].Line != 2 || at["extra"].File != "f.yml" {
		t.Errorf("positions %v", at)
	}
	if _, err := DecodeFile("f.yml", []byte("a: [\n"), &v); !errors.Is(err, ErrSyntax) {
		t.Errorf("bad YAML: %v", err)
	}
}

func TestParseFiles(t *testing.T) {
	c, err := ParseFiles(File{"a.yml", []byte("mode: static\n")}, File{"b.yml", []byte("mode: proxy\nserver: {listen: \"127.0.0.1:1\"}\n")})
	if err != nil || c.Mode != "proxy" || c.Server.Listen != "127.0.0.1:1" {
		t.Fatalf("%+v %v", c.Mode, err)
	}
	_, err = ParseFiles(File{"a.yml", []byte("buffer: {max_bytes: 1MiB}\n")})
	if err == nil || !strings.Contains(err.Error(), "a.yml:1: buffer") {
		t.Errorf("%v", err)
	}
}
