package topology

import (
	"bytes"
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/baton-relay/baton/config"
)

// TestK8sManifests: the example renders as Kubernetes manifests that
// decode strictly into the API's types (no unknown or mistyped field),
// with a Deployment for the edges, a StatefulSet with a buffer volume
// for the other tiers, a headless Service each, and a ConfigMap whose
// files Baton accepts and whose upstreams name every pod of the pool.
func TestK8sManifests(t *testing.T) {
	t.Setenv("KAFKA_PASSWORD", "x")
	for _, v := range []string{"EDGE_EU", "EDGE_US", "REGIONAL_EU", "REGIONAL_US"} {
		t.Setenv(v+"_SECRET_KEY", "x")
	}
	src, err := os.ReadFile("testdata/example.yml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loadExample(t, src).K8sFiles(); err == nil || !strings.Contains(err.Error(), "groups.processing: Kubernetes manifests need count") {
		t.Errorf("a group of addresses: %v", err)
	}
	src = bytes.Replace(src, []byte("addresses: [proc-1.internal, proc-2.internal]"), []byte("count: 2"), 1)
	files, err := loadExample(t, src).K8sFiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 7 {
		t.Fatalf("%d files, want one per group", len(files))
	}
	for path, b := range files {
		docs := bytes.Split(b, []byte("\n---\n"))
		if len(docs) != 3 {
			t.Fatalf("%s: %d documents", path, len(docs))
		}
		var cm corev1.ConfigMap
		var svc corev1.Service
		if err := yaml.UnmarshalStrict(docs[0], &cm); err != nil || cm.Kind != "ConfigMap" {
			t.Fatalf("%s: ConfigMap: %v", path, err)
		}
		if err := yaml.UnmarshalStrict(docs[1], &svc); err != nil || svc.Kind != "Service" || svc.Spec.ClusterIP != "None" {
			t.Fatalf("%s: Service: %v", path, err)
		}
		var cfgFiles []config.File
		for _, f := range []string{"base.yml", "region.yml", "node.yml"} {
			if d, ok := cm.Data[f]; ok {
				cfgFiles = append(cfgFiles, config.File{Name: f, Data: []byte(d)})
			}
		}
		cfg, err := config.ParseFiles(cfgFiles...)
		if err != nil {
			t.Fatalf("%s: the ConfigMap's config: %v", path, err)
		}
		if cfg.Buffer.Dir != "/var/lib/baton" {
			t.Errorf("%s: buffer.dir %q", path, cfg.Buffer.Dir)
		}
		switch {
		case strings.Contains(path, "edge-"):
			var d appsv1.Deployment
			if err := yaml.UnmarshalStrict(docs[2], &d); err != nil || d.Kind != "Deployment" || *d.Spec.Replicas != 3 {
				t.Fatalf("%s: Deployment: %v %+v", path, err, d.Spec)
			}
			c := d.Spec.Template.Spec.Containers[0]
			if c.Resources.Limits.Memory().Value() != 512<<20+512<<20/9 || len(c.Args) != 7 {
				t.Errorf("%s: container %+v", path, c)
			}
			if u := cfg.Upstreams["regional-eu"].URLs; strings.Contains(path, "-eu") && (len(u) != 2 || u[1] != "http://regional-eu-1.regional-eu:3000/") {
				t.Errorf("%s: upstream URLs %v", path, u)
			}
		default:
			var s appsv1.StatefulSet
			if err := yaml.UnmarshalStrict(docs[2], &s); err != nil || s.Kind != "StatefulSet" || s.Spec.ServiceName == "" {
				t.Fatalf("%s: StatefulSet: %v", path, err)
			}
			if len(s.Spec.VolumeClaimTemplates) != 1 || s.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().IsZero() {
				t.Errorf("%s: volume claims %+v", path, s.Spec.VolumeClaimTemplates)
			}
		}
	}
}
