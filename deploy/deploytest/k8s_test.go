package deploytest

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/herdhq/herd/internal/config"
)

// manifests are the objects of one rendered kustomization, decoded.
type manifests struct {
	namespaces  []corev1.Namespace
	configMaps  []corev1.ConfigMap
	secrets     []corev1.Secret
	services    []corev1.Service
	deployments []appsv1.Deployment
	statefuls   []appsv1.StatefulSet
	hpas        []autoscalingv2.HorizontalPodAutoscaler
	pdbs        []policyv1.PodDisruptionBudget
	policies    []networkingv1.NetworkPolicy
}

// render runs kustomize on deploy/k8s/DIR and decodes every object
// strictly (an unknown or misspelt field is an error) into its k8s.io/api
// type.
func render(t *testing.T, dir string) *manifests {
	t.Helper()
	path := filepath.Join(repoRoot(t), "deploy", "k8s", dir)
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), path)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", path, err)
	}
	m := &manifests{}
	for _, r := range res.Resources() {
		data, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var target any
		switch kind := r.GetApiVersion() + " " + r.GetKind(); kind {
		case "v1 Namespace":
			target = add(&m.namespaces)
		case "v1 ConfigMap":
			target = add(&m.configMaps)
		case "v1 Secret":
			target = add(&m.secrets)
		case "v1 Service":
			target = add(&m.services)
		case "apps/v1 Deployment":
			target = add(&m.deployments)
		case "apps/v1 StatefulSet":
			target = add(&m.statefuls)
		case "autoscaling/v2 HorizontalPodAutoscaler":
			target = add(&m.hpas)
		case "policy/v1 PodDisruptionBudget":
			target = add(&m.pdbs)
		case "networking.k8s.io/v1 NetworkPolicy":
			target = add(&m.policies)
		default:
			t.Fatalf("%s: %s %s is not checked by this test; add it", dir, kind, r.GetName())
		}
		if err := yaml.UnmarshalStrict(data, target); err != nil {
			t.Fatalf("%s: %s %s does not decode strictly: %v", dir, r.GetKind(), r.GetName(), err)
		}
	}
	return m
}

// add appends a zero T to list and returns a pointer to it.
func add[T any](list *[]T) *T {
	*list = append(*list, *new(T))
	return &(*list)[len(*list)-1]
}

// TestDeployKubernetes renders the base and the dev overlay and checks what their
// objects say about each other, and about herd: the probes hit herd's real
// admin port and paths, the HPA targets the Deployment, the ConfigMap's
// herd.yaml passes herd's loader, the grace period covers the drain.
func TestDeployKubernetes(t *testing.T) {
	for _, dir := range []string{"base", "overlays/dev"} {
		t.Run(dir, func(t *testing.T) {
			m := render(t, dir)
			checkHerdDeployment(t, m, dir == "overlays/dev")
		})
	}
}

func checkHerdDeployment(t *testing.T, m *manifests, wantSecret bool) {
	if len(m.deployments) != 1 || len(m.namespaces) != 1 {
		t.Fatalf("want one Deployment and one Namespace; got %d and %d", len(m.deployments), len(m.namespaces))
	}
	d := m.deployments[0]
	ns := m.namespaces[0].Name
	pod := d.Spec.Template
	podLabels := pod.Labels

	// Everything in the namespace.
	for _, o := range objectsOf(m) {
		if o.ns != ns {
			t.Errorf("%s: namespace %q; want %q", o.name, o.ns, ns)
		}
	}
	// Selectors and labels.
	if d.Spec.Selector == nil || !matches(d.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("Deployment selector %v does not match its pods' labels %v", d.Spec.Selector, podLabels)
	}
	if d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update: want maxUnavailable 0, so a rollout never drops below the ready count")
	}
	pdbFound := false
	for _, p := range m.pdbs {
		if p.Spec.Selector != nil && matches(p.Spec.Selector.MatchLabels, podLabels) {
			pdbFound = true
		}
	}
	if !pdbFound {
		t.Errorf("no PodDisruptionBudget selects herd's pods")
	}
	policyFound := false
	for _, p := range m.policies {
		if matches(p.Spec.PodSelector.MatchLabels, podLabels) {
			policyFound = true
		}
	}
	if !policyFound {
		t.Errorf("no NetworkPolicy selects herd's pods")
	}

	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("want one container; got %d", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	portOfTarget := func(what string, p intstr.IntOrString) int32 {
		if p.Type == intstr.String {
			n, ok := ports[p.StrVal]
			if !ok {
				t.Errorf("%s: port %q is not a container port (%v)", what, p.StrVal, ports)
			}
			return n
		}
		return p.IntVal
	}
	for _, s := range m.services {
		if !matches(s.Spec.Selector, podLabels) {
			if matches(s.Spec.Selector, statefulLabels(m)) {
				continue // the overlay's Redis
			}
			t.Errorf("Service %s selects %v: no pods", s.Name, s.Spec.Selector)
			continue
		}
		for _, p := range s.Spec.Ports {
			portOfTarget("Service "+s.Name, p.TargetPort)
		}
	}
	if !slices.ContainsFunc(m.services, func(s corev1.Service) bool { return s.Spec.Type == corev1.ServiceTypeLoadBalancer }) {
		t.Errorf("no LoadBalancer Service (the seed's)")
	}

	// herd's config: the ConfigMap the pod mounts, at the path it runs.
	cfg := podHerdConfig(t, m, pod, c)
	adminPort := int32(portOf(t, cfg.Admin))
	if ports["admin"] != adminPort || ports["http"] != int32(portOf(t, cfg.Listen)) {
		t.Errorf("container ports %v; herd.yaml listens on %s and admin %s", ports, cfg.Listen, cfg.Admin)
	}
	probes := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"startupProbe", c.StartupProbe, "/health"},
		{"readinessProbe", c.ReadinessProbe, "/health"},
		{"livenessProbe", c.LivenessProbe, "/status"}, // herd alive; no app needed
	}
	for _, p := range probes {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe", p.name)
			continue
		}
		if got := portOfTarget(p.name, p.probe.HTTPGet.Port); got != adminPort || p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s: GET :%d%s; want herd's admin :%d%s", p.name, got, p.probe.HTTPGet.Path, adminPort, p.path)
		}
	}
	// The grace period covers preStop, then the apps' drain and kill_timeout.
	var preStop time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	} else {
		t.Errorf("want a preStop sleep (the image has no shell), so endpoints drop the pod before the stop")
	}
	grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	if grace <= preStop+maxKillTimeout(cfg) {
		t.Errorf("terminationGracePeriodSeconds %s; want above preStop %s + kill_timeout %s", grace, preStop, maxKillTimeout(cfg))
	}
	// Non-root, read-only, resources for the HPA's utilization.
	psc, sc := pod.Spec.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 10001 {
		t.Errorf("pod securityContext: want runAsNonRoot and runAsUser 10001 (the image's user)")
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container securityContext: want readOnlyRootFilesystem and no privilege escalation")
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	mounted := map[string]bool{}
	for _, vm := range c.VolumeMounts {
		if _, ok := volumes[vm.Name]; !ok {
			t.Errorf("volumeMount %s: no such volume", vm.Name)
		}
		mounted[vm.MountPath] = true
	}
	// What herd and the shop write, on a read-only root: the control
	// socket's folder, the SQLite folder, the temp dir.
	socket := argAfter(c.Args, "--socket")
	for _, dir := range []string{filepath.Dir(socket), envOf(c, "SHOP_DATA"), "/tmp"} {
		if !mounted[dir] {
			t.Errorf("%s is written to but is no volume (the root filesystem is read-only)", dir)
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("resources.requests.%s: the HPA's utilization needs it", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			t.Errorf("resources.limits.%s: want one, as the seed has", r)
		}
	}

	// The admin token: an admin listener off loopback needs one, from the Secret.
	tokenEnv := cfg.AdminAuth.TokenEnv
	var ref *corev1.SecretKeySelector
	for _, e := range c.Env {
		if e.Name == tokenEnv && e.ValueFrom != nil {
			ref = e.ValueFrom.SecretKeyRef
		}
	}
	if tokenEnv == "" || ref == nil {
		t.Fatalf("herd.yaml's admin_auth.token_env %q is not set from a Secret in the container", tokenEnv)
	}
	if wantSecret {
		i := slices.IndexFunc(m.secrets, func(s corev1.Secret) bool { return s.Name == ref.Name })
		if i < 0 {
			t.Fatalf("the token's Secret %s is not in the overlay (Secrets: %v)", ref.Name, m.secrets)
		}
		if _, ok := m.secrets[i].Data[ref.Key]; !ok {
			t.Errorf("Secret %s has no key %s", ref.Name, ref.Key)
		}
	}

	// The HPA scales this Deployment on CPU, memory and herd's request rate.
	if len(m.hpas) != 1 {
		t.Fatalf("want one HPA; got %d", len(m.hpas))
	}
	h := m.hpas[0]
	if ref := h.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != d.Name || ref.APIVersion != "apps/v1" {
		t.Errorf("HPA targets %+v; want apps/v1 Deployment %s", ref, d.Name)
	}
	var got []string
	for _, mt := range h.Spec.Metrics {
		switch mt.Type {
		case autoscalingv2.ResourceMetricSourceType:
			got = append(got, string(mt.Resource.Name))
		case autoscalingv2.PodsMetricSourceType:
			got = append(got, mt.Pods.Metric.Name)
		}
	}
	if want := []string{"cpu", "herd_requests_per_second", "memory"}; !slices.Equal(sorted(got), want) {
		t.Errorf("HPA metrics %v; want %v", got, want)
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas <= *h.Spec.MinReplicas {
		t.Errorf("HPA replicas %v..%d; want at least 2 and room to grow", h.Spec.MinReplicas, h.Spec.MaxReplicas)
	}
	if b := h.Spec.Behavior; b == nil || b.ScaleDown == nil || b.ScaleDown.StabilizationWindowSeconds == nil || *b.ScaleDown.StabilizationWindowSeconds < 60 {
		t.Errorf("HPA behavior: want a scale-down stabilization window against flapping")
	}
	// A PDB must leave room to evict: below the HPA's minimum.
	for _, p := range m.pdbs {
		if p.Spec.MinAvailable != nil && p.Spec.MinAvailable.IntValue() >= int(*h.Spec.MinReplicas) {
			t.Errorf("PodDisruptionBudget %s: minAvailable %s at the HPA's minimum %d blocks every drain of a node", p.Name, p.Spec.MinAvailable.String(), *h.Spec.MinReplicas)
		}
	}
}

// podHerdConfig finds the herd.yaml the container runs (-f PATH, PATH in a
// mounted ConfigMap) and loads it with herd's loader, its token in the
// environment and the image's shop mapped onto an existing program.
func podHerdConfig(t *testing.T, m *manifests, pod corev1.PodTemplateSpec, c corev1.Container) *config.Config {
	t.Helper()
	file := argAfter(c.Args, "-f")
	var data string
	for _, vm := range c.VolumeMounts {
		if filepath.Dir(file) != vm.MountPath {
			continue
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name != vm.Name || v.ConfigMap == nil {
				continue
			}
			i := slices.IndexFunc(m.configMaps, func(cm corev1.ConfigMap) bool { return cm.Name == v.ConfigMap.Name })
			if i < 0 {
				t.Fatalf("volume %s: ConfigMap %s is not in the manifests", v.Name, v.ConfigMap.Name)
			}
			data = m.configMaps[i].Data[filepath.Base(file)]
		}
	}
	if data == "" {
		t.Fatalf("the container runs -f %s, which no mounted ConfigMap holds", file)
	}
	t.Setenv("HERD_ADMIN_TOKEN", "0123456789abcdef0123456789abcdef")
	path := filepath.Join(t.TempDir(), "herd.yaml")
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := loadHerdConfig(t, path, nil)
	if err := config.CheckAdminAuth(cfg); err != nil {
		t.Errorf("herd.yaml's admin listener: %v", err)
	}
	return cfg
}

type object struct{ name, ns string }

func objectsOf(m *manifests) []object {
	return slices.Concat(metaOf("ConfigMap", m.configMaps), metaOf("Secret", m.secrets),
		metaOf("Service", m.services), metaOf("Deployment", m.deployments),
		metaOf("StatefulSet", m.statefuls), metaOf("HorizontalPodAutoscaler", m.hpas),
		metaOf("PodDisruptionBudget", m.pdbs), metaOf("NetworkPolicy", m.policies))
}

// metaOf names each object of list, of kind, with its namespace.
func metaOf[T any, P interface {
	*T
	metav1.Object
}](kind string, list []T) []object {
	out := make([]object, 0, len(list))
	for i := range list {
		o := P(&list[i])
		out = append(out, object{kind + " " + o.GetName(), o.GetNamespace()})
	}
	return out
}

// statefulLabels are the pod labels of the StatefulSets, merged.
func statefulLabels(m *manifests) map[string]string {
	out := map[string]string{}
	for _, s := range m.statefuls {
		maps.Copy(out, s.Spec.Template.Labels)
	}
	return out
}

// matches reports whether a non-empty selector selects labels.
func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func argAfter(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

func envOf(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}
