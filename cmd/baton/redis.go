package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/baton-relay/baton/config"
	"github.com/baton-relay/baton/relay"
)

// redisUsageText is the usage of `baton redis`; PARTS stands for the
// project config parts (relay.ProjectConfigParts).
const redisUsageText = `baton redis put-config [--config FILE]... [--redis ADDR,...] [--prefix P] [--rev R] KEY PART FILE|-
baton redis get-config [--config FILE]... [--redis ADDR,...] [--prefix P] KEY [PART]
baton redis delete-config [--config FILE]... [--redis ADDR,...] [--prefix P] KEY PART

Project configs kept in Redis (redis.project_configs; DESIGN.md "Project configs in Redis"):
put-config checks FILE (stdin for -) as the value of PART and stores it at
<prefix>:KEY:PART as {"rev": R, "value": ...} (R: the value's SHA-256, cut
to 12 hex digits, by default), then publishes KEY on <prefix>:updates, so
every Baton reading configs from that Redis applies it within a second.
PART is one of PARTS. The connection (addresses, credentials, TLS)
and the prefix come from the config's redis section; --redis and --prefix
override them.`

// cmdRedis runs `baton redis ...`.
func cmdRedis(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	redisUsage := strings.Replace(redisUsageText, "PARTS", strings.Join(relay.ProjectConfigParts(), ", "), 1)
	// The operands each verb takes: at least, at most.
	arity := map[string][2]int{"put-config": {3, 3}, "get-config": {1, 2}, "delete-config": {2, 2}}
	if len(args) == 0 {
		fmt.Fprintf(stderr, "Usage: %s\n", redisUsage)
		return exitUsage
	}
	verb := args[0]
	want, ok := arity[verb]
	if !ok {
		fmt.Fprintf(stderr, "Usage: %s\n", redisUsage)
		return exitUsage
	}
	fs := newFlagSet("baton redis "+verb, stderr, redisUsage)
	var files configFlags
	fs.Var(&files, "config", "config file whose redis section is used; repeat to overlay")
	addrs := fs.String("redis", "", "Redis addresses, host:port, comma separated (default: redis.addresses)")
	prefix := fs.String("prefix", "", "config key prefix (default: redis.project_configs.prefix)")
	rev := fs.String("rev", "", "put-config: the part's revision (default: a hash of the value)")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if fs.NArg() < want[0] || fs.NArg() > want[1] {
		fs.Usage()
		return exitUsage
	}
	cfg, err := config.Load(files...)
	if err != nil {
		fmt.Fprintf(stderr, "baton: invalid configuration:\n%v\n", err)
		return exitError
	}
	rc := cfg.Redis
	if *addrs != "" {
		rc.Addresses = strings.Split(*addrs, ",")
	}
	if *prefix != "" {
		rc.ProjectConfigs.Prefix = *prefix
	}
	if len(rc.Addresses) == 0 {
		fmt.Fprintf(stderr, "baton redis %s: no Redis address: set --redis or redis.addresses\n", verb)
		return exitUsage
	}
	src, err := relay.OpenRedisConfigs(rc, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(stderr, "baton redis %s: %v\n", verb, err)
		return exitError
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := fs.Arg(0)
	switch verb {
	case "put-config":
		part, file := fs.Arg(1), fs.Arg(2)
		var value []byte
		if file == "-" {
			value, err = io.ReadAll(stdin)
		} else {
			value, err = os.ReadFile(file)
		}
		if err != nil {
			fmt.Fprintf(stderr, "baton redis put-config: %v\n", err)
			return exitError
		}
		if *rev == "" {
			sum := sha256.Sum256(value)
			*rev = hex.EncodeToString(sum[:6])
		}
		if err := relay.PutProjectConfig(ctx, src, key, part, *rev, value); err != nil {
			fmt.Fprintf(stderr, "baton redis put-config: %s: %v\n", file, err)
			return exitError
		}
		fmt.Fprintf(stdout, "%s rev %s, published on %s\n", src.Key(key, part), *rev, src.Channel())
	case "delete-config":
		if err := relay.PutProjectConfig(ctx, src, key, fs.Arg(1), "", nil); err != nil {
			fmt.Fprintf(stderr, "baton redis delete-config: %v\n", err)
			return exitError
		}
		fmt.Fprintf(stdout, "%s deleted, published on %s\n", src.Key(key, fs.Arg(1)), src.Channel())
	case "get-config":
		parts := relay.ProjectConfigParts()
		if fs.NArg() == 2 {
			parts = []string{fs.Arg(1)}
		}
		out := map[string]json.RawMessage{}
		for _, p := range parts {
			b, err := src.Get(ctx, key, p)
			if err != nil {
				fmt.Fprintf(stderr, "baton redis get-config: %v\n", err)
				return exitError
			}
			if b != nil {
				if !json.Valid(b) {
					b, _ = json.Marshal(string(b)) // a broken part, shown as text
				}
				out[p] = b
			}
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		if len(out) == 0 {
			fmt.Fprintf(stderr, "baton redis get-config: no part of %s under %s\n", key, rc.ProjectConfigs.Prefix)
			return exitError
		}
	}
	return exitOK
}
