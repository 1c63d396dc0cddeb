package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/baton-relay/baton/config"
)

// image is what the final stage of the Dockerfile sets up.
type image struct {
	build      string            // the build stage's RUN lines
	files      map[string]string // heredoc COPYs: image path → content
	entrypoint []string
	cmd        []string
	user       string
	workdir    string
	volumes    []string
	expose     []int
	stopSignal string
	env        []string
}

// parseDockerfile reads the instructions this test emulates. It knows the
// forms the Dockerfile uses (JSON ENTRYPOINT/CMD/VOLUME, heredoc COPY),
// and fails on the others so that a change of form is noticed.
func parseDockerfile(t *testing.T, path string) image {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img := image{files: map[string]string{}}
	lines := strings.Split(string(b), "\n")
	stage := 0
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, "\\") + " " + strings.TrimSpace(lines[i])
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		op, arg, _ := strings.Cut(line, " ")
		arg = strings.TrimSpace(arg)
		jsonList := func() []string {
			var l []string
			if err := json.Unmarshal([]byte(arg), &l); err != nil {
				t.Fatalf("Dockerfile:%d: %s %s: want the JSON form: %v", i+1, op, arg, err)
			}
			return l
		}
		switch strings.ToUpper(op) {
		case "FROM":
			stage++
		case "RUN":
			img.build += arg + "\n"
		case "COPY":
			if m := regexp.MustCompile(`^<<"?(\w+)"? (\S+)$`).FindStringSubmatch(arg); m != nil {
				var body []string
				for i++; i < len(lines) && lines[i] != m[1]; i++ {
					body = append(body, lines[i])
				}
				img.files[m[2]] = strings.Join(body, "\n") + "\n"
			}
		case "ENTRYPOINT":
			img.entrypoint = jsonList()
		case "CMD":
			img.cmd = jsonList()
		case "USER":
			img.user = arg
		case "WORKDIR":
			img.workdir = arg
		case "VOLUME":
			img.volumes = jsonList()
		case "EXPOSE":
			for _, p := range strings.Fields(arg) {
				n, err := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
				if err != nil {
					t.Fatalf("Dockerfile:%d: EXPOSE %s: %v", i+1, p, err)
				}
				img.expose = append(img.expose, n)
			}
		case "STOPSIGNAL":
			img.stopSignal = arg
		case "ENV":
			img.env = append(img.env, strings.Fields(arg)...)
		}
	}
	if stage < 2 || len(img.entrypoint) == 0 {
		t.Fatalf("Dockerfile: %d stages, entrypoint %q: not the layout this test knows", stage, img.entrypoint)
	}
	return img
}

// distroless's nonroot user and group.
const nonrootID = 65532

// TestContainerImageDefault runs what the image runs, with no container
// engine: the static binary (CGO_ENABLED=0, as the Dockerfile builds it)
// with the image's entrypoint, command, user (when the test runs as root),
// working directory, env and the files it writes, placed under a temporary
// root (image path /x is root/x). It checks that the default the image
// embeds is usable from outside: the banner prints no wildcard address,
// the ports it listens on are those EXPOSEd, a Kafka client outside
// reaches the broker through its advertised address (configurable with
// BATON_KAFKA_ADVERTISED), and STOPSIGNAL stops it within docker stop's
// default grace period.
//
// The image's ports are fixed (3000, 9092): the test skips when another
// process holds them.
func TestContainerImageDefault(t *testing.T) {
	img := parseDockerfile(t, filepath.Join("..", "Dockerfile"))
	if !strings.Contains(img.build, "CGO_ENABLED=0 go build") {
		t.Fatalf("the Dockerfile no longer builds with CGO_ENABLED=0; this test builds the binary that way:\n%s", img.build)
	}
	ignore, err := os.ReadFile(filepath.Join("..", ".dockerignore"))
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	for _, want := range []string{".git", "**/baton-data"} {
		if !slices.Contains(strings.Fields(string(ignore)), want) {
			t.Errorf(".dockerignore does not keep %s out of the build context", want)
		}
	}
	if !slices.Contains(img.expose, 3000) || !slices.Contains(img.expose, 9092) {
		t.Errorf("EXPOSE %v: want the HTTP port 3000 and the broker's 9092", img.expose)
	}
	for _, port := range img.expose {
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			t.Skipf("port %d, EXPOSEd by the image, is taken on this host: %v", port, err)
		}
		ln.Close()
	}

	root := t.TempDir()
	for _, d := range []string{root, filepath.Dir(root)} {
		if err := os.Chmod(d, 0o755); err != nil { // the nonroot user walks through
			t.Fatal(err)
		}
	}
	imagePaths := append([]string{img.workdir}, img.volumes...)
	for p := range img.files {
		imagePaths = append(imagePaths, p)
	}
	slices.SortFunc(imagePaths, func(a, b string) int { // longest first, duplicates together
		if d := len(b) - len(a); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	var pairs []string
	for _, p := range slices.Compact(imagePaths) {
		pairs = append(pairs, p, filepath.Join(root, p))
	}
	inRoot := strings.NewReplacer(pairs...).Replace
	asRoot := os.Geteuid() == 0
	for p, body := range img.files {
		dst := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte(inRoot(body)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range append([]string{img.workdir}, img.volumes...) {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if asRoot {
			if err := os.Chown(filepath.Join(root, d), nonrootID, nonrootID); err != nil {
				t.Fatal(err)
			}
		}
	}
	bin := filepath.Join(root, img.entrypoint[0])
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=container-test", "-o", bin, "./cmd/baton")
	build.Dir, build.Env = "..", append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}

	// The image's drain fits docker stop's default grace period (10s),
	// with the second Close gives the sinks.
	var cfgFiles []string
	for i, a := range img.cmd {
		if a == "--config" && i+1 < len(img.cmd) {
			cfgFiles = append(cfgFiles, inRoot(img.cmd[i+1]))
		}
	}
	cfg, err := config.Load(cfgFiles...)
	if err != nil {
		t.Fatalf("the image's config: %v", err)
	}
	const dockerGrace = 10 * time.Second
	if cfg.Server.ShutdownTimeout+time.Second >= dockerGrace {
		t.Errorf("server.shutdown_timeout %s (+1s for the sinks) is not under docker stop's %s", cfg.Server.ShutdownTimeout, dockerGrace)
	}

	args := append(append([]string(nil), img.entrypoint[1:]...), img.cmd...)
	for i := range args {
		args[i] = inRoot(args[i])
	}
	const advertised = "localhost:9092" // as another host would name Baton's
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Join(root, img.workdir)
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/nonroot"}, img.env...)
	cmd.Env = append(cmd.Env, "BATON_KAFKA_ADVERTISED="+advertised)
	if img.user != "nonroot:nonroot" {
		t.Fatalf("USER %q: this test knows distroless's nonroot:nonroot (%d)", img.user, nonrootID)
	}
	if asRoot {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nonrootID, Gid: nonrootID}}
	} else {
		t.Logf("not root: running as uid %d, not the image's %s", os.Geteuid(), img.user)
	}
	p := crashStartCmd(t, cmd)
	p.waitReady(t, http.DefaultClient, 20*time.Second)

	// The banner: reachable addresses only, on the EXPOSEd ports. Ready can
	// come before its last lines are written: wait for the last one.
	fakeWaitFor(t, 10*time.Second, func() bool { return strings.Contains(p.stdout.String(), "Ctrl-C") },
		func() string { return "the banner never ended:\n" + p.stdout.String() })
	banner := p.stdout.String()
	if strings.Contains(banner, "[::]") || strings.Contains(banner, "0.0.0.0") {
		t.Errorf("the banner prints a wildcard address:\n%s", banner)
	}
	dsn := regexp.MustCompile(`example DSN:\s+http://\w+@([^/\s]+)/`).FindStringSubmatch(banner)
	kcat := regexp.MustCompile(`kcat -b (\S+) `).FindStringSubmatch(banner)
	if dsn == nil || kcat == nil {
		t.Fatalf("no DSN or kcat hint in the banner:\n%s", banner)
	}
	if dsn[1] != "127.0.0.1:3000" || kcat[1] != advertised {
		t.Errorf("banner: DSN host %s, kcat broker %s; want 127.0.0.1:3000 and the advertised %s", dsn[1], kcat[1], advertised)
	}
	if !strings.Contains(banner, "in memory: emptied when Baton restarts") {
		t.Errorf("the banner does not say that the embedded broker is in memory:\n%s", banner)
	}
	for _, port := range img.expose {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			t.Errorf("EXPOSEd port %d: nothing listens: %v", port, err)
			continue
		}
		c.Close()
	}
	for _, hp := range []string{dsn[1], kcat[1]} {
		_, port, _ := net.SplitHostPort(hp)
		if n, _ := strconv.Atoi(port); !slices.Contains(img.expose, n) {
			t.Errorf("the banner's %s uses a port the image does not EXPOSE (%v)", hp, img.expose)
		}
	}

	// An envelope in, read back from outside through the advertised broker.
	body := []byte("{}\n{\"type\":\"event\"}\n{\"message\":\"from outside the container\"}\n")
	if status, resp, _ := post(t, p.base+"/api/1/envelope/", body, authHeader("a7c3e9f1b5d24680ace13579bdf02468")); status != 200 {
		t.Fatalf("envelope: %d %s", status, resp)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:9092"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	meta, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatalf("broker metadata: %v", err)
	}
	if len(meta.Brokers) != 1 || net.JoinHostPort(meta.Brokers[0].Host, strconv.Itoa(int(meta.Brokers[0].Port))) != advertised {
		t.Errorf("the broker advertises %+v, want %s", meta.Brokers, advertised)
	}
	recs := consume(t, "127.0.0.1:9092", "baton.error", 1, 10*time.Second)
	if !strings.Contains(string(recs[0].Value), "from outside the container") {
		t.Errorf("baton.error holds %q", recs[0].Value)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "baton.error", Value: []byte("produced from outside")}).FirstErr(); err != nil {
		t.Errorf("produce through the advertised address: %v", err)
	}

	// docker stop sends STOPSIGNAL, then SIGKILL after the grace period.
	sig := map[string]syscall.Signal{"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "": syscall.SIGTERM}[img.stopSignal]
	if sig == 0 {
		t.Fatalf("STOPSIGNAL %s: not one Baton handles", img.stopSignal)
	}
	start := time.Now()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(dockerGrace):
		t.Fatalf("still running %s after %s; docker would SIGKILL it\nstderr:\n%s", img.stopSignal, dockerGrace, crashTail(p.stderr.String(), 3000))
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after %s", code, img.stopSignal)
	}
	t.Logf("stopped in %s", time.Since(start).Round(time.Millisecond))
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "level=ERROR") {
			t.Errorf("error logged: %s", sc.Text())
		}
	}
}

// Listening on every interface (as in a container), the banner still
// prints addresses a client can use, and the embedded broker advertises
// one: 127.0.0.1 with the bound port, or kafka.embedded.advertised. Free
// ports, unlike TestContainerImageDefault.
func TestBannerOnWildcardListen(t *testing.T) {
	bin := crashBuildBaton(t)
	dir := t.TempDir()
	port := faultFreePort(t)
	for _, tc := range []struct{ advertised, want string }{
		{"", fmt.Sprintf("127.0.0.1:%d", port)},
		{fmt.Sprintf("localhost:%d", port), fmt.Sprintf("localhost:%d", port)},
	} {
		cfg := filepath.Join(dir, "baton.yaml")
		body := fmt.Sprintf("server: {listen: '0.0.0.0:0'}\nbuffer: {dir: %s, reserve_bytes: 1MiB}\nkafka: {embedded: {listen: '0.0.0.0:%d', advertised: %q}}\n",
			filepath.Join(dir, "data"), port, tc.advertised)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		p := crashStart(t, bin, cfg)
		p.waitReady(t, http.DefaultClient, 10*time.Second)
		// Ready can come before the banner's last lines are written.
		fakeWaitFor(t, 10*time.Second, func() bool { return strings.Contains(p.stdout.String(), "Ctrl-C") },
			func() string { return "the banner never ended:\n" + p.stdout.String() })
		banner := p.stdout.String()
		if strings.Contains(banner, "[::]") || strings.Contains(banner, "0.0.0.0") || !strings.HasPrefix(p.base, "http://127.0.0.1:") {
			t.Errorf("advertised %q: the banner prints a wildcard address:\n%s", tc.advertised, banner)
		}
		if !strings.Contains(banner, "kcat -b "+tc.want+" ") {
			t.Errorf("advertised %q: no kcat hint on %s:\n%s", tc.advertised, tc.want, banner)
		}
		body2 := []byte("{}\n{\"type\":\"event\"}\n{\"message\":\"wildcard\"}\n")
		if status, resp, _ := post(t, p.base+"/api/1/envelope/", body2, authHeader("a7c3e9f1b5d24680ace13579bdf02468")); status != 200 {
			t.Fatalf("envelope: %d %s", status, resp)
		}
		// The client follows the broker's metadata: it must use the
		// advertised address to fetch.
		consume(t, fmt.Sprintf("127.0.0.1:%d", port), "baton.error", 1, 10*time.Second)
		if code := p.stop(t, 10*time.Second); code != 0 {
			t.Fatalf("exit code %d", code)
		}
	}
}
