// Command go-labeller is the side-by-side benchmark's client-go peer
// (docs/design/performance.md §1): a dynamic informer and a rate-limiting
// workqueue doing the kubewasm bench-labeller plugin's work. Every ConfigMap
// whose label bench.kubewasm.dev/seen is not "true" gets it by server-side
// apply (field manager bench/go); a labelled one gets nothing.
//
//	go-labeller [--kubeconfig PATH] [--workers 16] [--namespace NS] [--qps N]
//
// The informer's transform clears managedFields before objects are cached.
// Without --qps the client has no rate limit (rest.Config.QPS = -1);
// with it, client-go's token bucket allows N per second (burst 1.5 N).
// Once a second, when anything happened, it logs how many ConfigMaps it
// reconciled and labelled.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
)

const (
	label        = "bench.kubewasm.dev/seen"
	value        = "true"
	fieldManager = "bench/go"
)

var configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

type labeller struct {
	client     dynamic.Interface
	lister     cache.GenericLister
	queue      workqueue.TypedRateLimitingInterface[string]
	reconciled atomic.Uint64
	applied    atomic.Uint64
}

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file (default $KUBECONFIG)")
	workers := flag.Int("workers", 16, "reconciles running at once (worker goroutines)")
	namespace := flag.String("namespace", "", "watch only this namespace (default: all namespaces)")
	qps := flag.Float64("qps", 0, "client rate limit in requests per second (default: none)")
	flag.Parse()
	if *workers < 1 {
		fmt.Fprintln(os.Stderr, "go-labeller: --workers must be at least 1")
		os.Exit(2)
	}
	if err := run(*kubeconfig, *workers, *namespace, *qps); err != nil {
		fmt.Fprintf(os.Stderr, "go-labeller: %v\n", err)
		os.Exit(1)
	}
}

func run(kubeconfig string, workers int, namespace string, qps float64) error {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("loading kubeconfig %q: %w", kubeconfig, err)
	}
	config.QPS = -1 // client-go: a negative QPS disables the client's limiter
	if qps > 0 {
		config.QPS = float32(qps)
		config.Burst = int(qps * 1.5)
	}
	client, err := dynamic.NewForConfig(config)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(client, 0, namespace, nil)
	informer := factory.ForResource(configMaps)
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "configmaps"},
	)
	l := &labeller{client: client, lister: informer.Lister(), queue: queue}
	if err := informer.Informer().SetTransform(func(obj any) (any, error) {
		if accessor, err := meta.Accessor(obj); err == nil {
			accessor.SetManagedFields(nil)
		}
		return obj, nil
	}); err != nil {
		return err
	}
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	if _, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	for gvr, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cache of %v did not sync", gvr)
		}
	}
	if namespace == "" {
		namespace = "(all)"
	}
	fmt.Fprintf(os.Stderr, "go-labeller: started (workers %d, namespace %s, qps %v)\n", workers, namespace, config.QPS)
	for range workers {
		go func() {
			for l.next(ctx) {
			}
		}()
	}
	go l.report(ctx)
	<-ctx.Done()
	queue.ShutDown()
	return nil
}

// next reconciles one key from the queue; false once the queue shuts down.
func (l *labeller) next(ctx context.Context) bool {
	key, shutdown := l.queue.Get()
	if shutdown {
		return false
	}
	defer l.queue.Done(key)
	if err := l.reconcile(ctx, key); err != nil {
		fmt.Fprintf(os.Stderr, "go-labeller: %s: %v\n", key, err)
		l.queue.AddRateLimited(key)
		return true
	}
	l.queue.Forget(key)
	return true
}

func (l *labeller) reconcile(ctx context.Context, key string) error {
	l.reconciled.Add(1)
	obj, err := l.lister.Get(key)
	if apierrors.IsNotFound(err) {
		return nil // deleted since it was queued
	} else if err != nil {
		return err
	}
	cm := obj.(*unstructured.Unstructured)
	if cm.GetLabels()[label] == value {
		return nil
	}
	applied := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata": map[string]any{
			"name":      cm.GetName(),
			"namespace": cm.GetNamespace(),
			"labels":    map[string]any{label: value},
		},
	}}
	_, err = l.client.Resource(configMaps).Namespace(cm.GetNamespace()).Apply(
		ctx, cm.GetName(), applied, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	if err == nil {
		l.applied.Add(1)
	}
	return err
}

// report logs the counts once a second while they change.
func (l *labeller) report(ctx context.Context) {
	var lastReconciled, lastApplied uint64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		reconciled, applied := l.reconciled.Load(), l.applied.Load()
		if reconciled != lastReconciled || applied != lastApplied {
			fmt.Fprintf(os.Stderr, "go-labeller: reconciled %d (+%d), labelled %d (+%d)\n",
				reconciled, reconciled-lastReconciled, applied, applied-lastApplied)
			lastReconciled, lastApplied = reconciled, applied
		}
	}
}
