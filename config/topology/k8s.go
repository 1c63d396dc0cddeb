package topology

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"github.com/baton-relay/baton/config"
)

// Kubernetes output (`render --format k8s`): per group, a ConfigMap with
// its config files, a headless Service, and a Deployment (entry tiers:
// stateless edges whose buffer is the pod's) or a StatefulSet with one
// volume per pod sized from resources.buffer (buffered tiers). Nodes of a
// StatefulSet are reached at their stable names, GROUP-i.GROUP, so an
// upstream list keeps one URL per node and rendezvous hashing works.
const (
	K8sDir = "k8s"
	// K8sImage is the image the workloads run; Kubernetes.Image overrides.
	K8sImage = "ghcr.io/baton-relay/baton:latest"
	// k8sDataDir is where the buffer volume is mounted.
	k8sDataDir = "/var/lib/baton"
	k8sConfDir = "/etc/baton"
)

// Kubernetes are the k8s settings of a group.
type Kubernetes struct {
	// Image of the baton container. Default: K8sImage.
	Image string `yaml:"image"`
	// StorageClass of the buffer volumes; "" is the cluster default.
	StorageClass string `yaml:"storage_class"`
}

// K8sFiles renders the fleet as Kubernetes manifests, one file per group
// under k8s/. Groups must use count, not addresses (Check says so when
// asked for k8s).
func (t *Topology) K8sFiles() (map[string][]byte, error) {
	k := *t
	k.k8s = true
	k.Groups = make(map[string]Group, len(t.Groups))
	for name, g := range t.Groups {
		g.DataDir = k8sDataDir
		k.Groups[name] = g
	}
	files := map[string][]byte{}
	for _, name := range sortedKeys(k.Groups) {
		g := k.Groups[name]
		if len(g.Addresses) > 0 {
			return nil, fmt.Errorf("groups.%s: Kubernetes manifests need count, not addresses", name)
		}
		_, lport, _ := net.SplitHostPort(g.Listen)
		port, _ := strconv.Atoi(lport)
		cfg, err := k.nodeConfig(Node{Name: name, Group: name, Region: g.Region, Tier: g.Tier, Port: port})
		if err != nil {
			return nil, err
		}
		cfg["server"].(obj)["listen"] = net.JoinHostPort("", lport)
		own, err := marshal("", cfg)
		if err != nil {
			return nil, err
		}
		base, err := rawFile(t.Settings)
		if err != nil {
			return nil, err
		}
		data := obj{"base.yml": string(base), "node.yml": string(own)}
		args := []string{"run", "--config", k8sConfDir + "/base.yml"}
		if g.Region != "" {
			region, err := rawFile(t.Regions[g.Region].Settings)
			if err != nil {
				return nil, err
			}
			data["region.yml"] = string(region)
			args = append(args, "--config", k8sConfDir+"/region.yml")
		}
		args = append(args, "--config", k8sConfDir+"/node.yml")

		labels := obj{"app.kubernetes.io/name": "baton", "app.kubernetes.io/instance": name, "baton.dev/tier": g.Tier}
		if g.Region != "" {
			labels["baton.dev/region"] = g.Region
		}
		selector := obj{"app.kubernetes.io/name": "baton", "app.kubernetes.io/instance": name}
		meta := obj{"name": name, "labels": labels}
		image := g.Kubernetes.Image
		if image == "" {
			image = K8sImage
		}
		container := obj{
			"name":           "baton",
			"image":          image,
			"args":           args,
			"ports":          []obj{{"name": "http", "containerPort": port}},
			"readinessProbe": obj{"httpGet": obj{"path": "/api/relay/healthcheck/ready/", "port": "http"}},
			"livenessProbe":  obj{"httpGet": obj{"path": "/api/relay/healthcheck/live/", "port": "http"}},
			"volumeMounts": []obj{
				{"name": "config", "mountPath": k8sConfDir, "readOnly": true},
				{"name": "data", "mountPath": k8sDataDir},
			},
		}
		if mem := g.Resources.Memory; mem > 0 {
			// runtime.memory_limit is resources.memory: the container gets
			// a ninth more, so Go's soft limit is 90% of the hard one.
			container["resources"] = obj{"limits": obj{"memory": strconv.FormatInt(int64(mem)+int64(mem)/9, 10)}}
		}
		volumes := []obj{{"name": "config", "configMap": obj{"name": name}}}
		pod := obj{"metadata": obj{"labels": labels}, "spec": obj{"containers": []obj{container}, "volumes": volumes}}
		var workload obj
		if t.Tiers[g.Tier].Entry {
			volumes = append(volumes, obj{"name": "data", "emptyDir": obj{}})
			pod["spec"].(obj)["volumes"] = volumes
			workload = obj{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
				"spec": obj{"replicas": g.Count, "selector": obj{"matchLabels": selector}, "template": pod}}
		} else {
			storage := g.Resources.Buffer
			if storage == 0 {
				storage = 10 << 30 // buffer.max_bytes's default
			}
			claim := obj{"accessModes": []string{"ReadWriteOnce"},
				"resources": obj{"requests": obj{"storage": strconv.FormatInt(int64(storage)+int64(storage)/10, 10)}}}
			if g.Kubernetes.StorageClass != "" {
				claim["storageClassName"] = g.Kubernetes.StorageClass
			}
			workload = obj{"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta,
				"spec": obj{"replicas": g.Count, "serviceName": name, "selector": obj{"matchLabels": selector}, "template": pod,
					"volumeClaimTemplates": []obj{{"metadata": obj{"name": "data"}, "spec": claim}}}}
		}
		service := obj{"apiVersion": "v1", "kind": "Service", "metadata": meta,
			"spec": obj{"clusterIP": "None", "selector": selector, "ports": []obj{{"name": "http", "port": port, "targetPort": "http"}}}}
		configMap := obj{"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}
		var b bytes.Buffer
		fmt.Fprintf(&b, "# Rendered by `baton topology render --format k8s` from %s; edit that file, not this one.\n", filepath.Base(t.name))
		for i, doc := range []obj{configMap, service, workload} {
			if i > 0 {
				b.WriteString("---\n")
			}
			out, err := marshal("", doc)
			if err != nil {
				return nil, err
			}
			b.Write(out)
		}
		files[filepath.Join(K8sDir, name+".yml")] = b.Bytes()
	}
	return files, nil
}

// rawFile is a settings subtree as a config file.
func rawFile(r config.Raw) ([]byte, error) {
	if r.Node == nil {
		return []byte("{}\n"), nil
	}
	var v any
	if err := r.Node.Decode(&v); err != nil {
		return nil, err
	}
	return marshal("", v)
}

// RenderK8s writes K8sFiles under dir as Render does.
func (t *Topology) RenderK8s(dir string) (written, removed []string, err error) {
	files, err := t.K8sFiles()
	if err != nil {
		return nil, nil, err
	}
	return write(dir, files, []string{K8sDir})
}
