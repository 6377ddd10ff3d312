// check builds every kustomize overlay given on the command line (as `kustomize build` would)
// and decodes each resource strictly into its Kubernetes API type: an unknown or misspelt field,
// a wrong type or an unknown kind fails. The schema check the tests run, with no cluster.
package main

import (
	"fmt"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// The kinds the manifests may use, each with its Go type.
var kinds = map[string]func() any{
	"apps/v1/Deployment":                     func() any { return &appsv1.Deployment{} },
	"v1/Service":                             func() any { return &corev1.Service{} },
	"v1/ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                              func() any { return &corev1.Secret{} },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1/PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
	"v1/Namespace":                           func() any { return &corev1.Namespace{} },
}

func main() {
	failed := false
	for _, dir := range os.Args[1:] {
		resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
		if err != nil {
			fmt.Printf("%s: kustomize build: %v\n", dir, err)
			failed = true
			continue
		}
		for _, r := range resources.Resources() {
			id := fmt.Sprintf("%s/%s", r.GetApiVersion(), r.GetKind())
			make, known := kinds[id]
			if !known {
				fmt.Printf("%s: %s %s: kind not allowed\n", dir, id, r.GetName())
				failed = true
				continue
			}
			doc, err := r.AsYAML()
			if err == nil {
				err = yaml.UnmarshalStrict(doc, make())
			}
			if err != nil {
				fmt.Printf("%s: %s %s: %v\n", dir, id, r.GetName(), strings.TrimSpace(err.Error()))
				failed = true
			}
		}
		fmt.Printf("%s: %d resources checked\n", dir, len(resources.Resources()))
	}
	if failed {
		os.Exit(1)
	}
}
