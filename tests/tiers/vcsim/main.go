// infradeck-vcsim: VMware's vCenter simulator (govmomi's `simulator` package, Debian's
// golang-github-vmware-govmomi-dev 0.24.2) with a REST layer of ours over its inventory.
//
// vcsim 0.24.2 serves SOAP (vim25, /sdk) for real but none of the Automation REST API (/api)
// that infradeck's connector reads. rest.go serves those endpoints from simulator.Map, so REST
// and SOAP show one inventory: VMware's names, moids, UUIDs, MACs and topology, not ours.
//
//	infradeck-vcsim serve [flags]            # prints "INFRADECK_VCSIM_URL=http://127.0.0.1:PORT"
//	infradeck-vcsim op URL ACTION ARGS...    # changes the estate over SOAP (see op.go)
//
// The server runs until SIGTERM or SIGINT, then removes the model's temporary files.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "op" {
		os.Exit(op(os.Args[2:]))
	}
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	}
	os.Exit(serve(args))
}

func serve(args []string) int {
	flags := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := flags.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	user := flags.String("username", "user", "the one account")
	password := flags.String("password", "pass", "its password")
	clusters := flags.Int("cluster", 1, "clusters per datacenter")
	clusterHosts := flags.Int("cluster-host", 3, "hosts per cluster")
	standalone := flags.Int("host", 1, "standalone hosts per datacenter")
	machines := flags.Int("vm", 2, "VMs per host and per cluster resource pool")
	datastores := flags.Int("ds", 1, "datastores")
	portgroups := flags.Int("pg", 1, "distributed port groups per datacenter")
	datacenters := flags.Int("dc", 1, "datacenters")
	toolsRunning := flags.Bool("tools-running", false,
		"report VMware Tools running in every powered-on VM (vcsim's default is not running)")
	withParent := flags.Bool("exit-with-parent", false,
		"exit when the process that started this one ends (tests: no server outlives its test)")
	_ = flags.String("state", "",
		"the caller's state directory; only on the command line, so scripts recognise this process by PID")
	caps := capsFromFlags(flags)
	_ = flags.Parse(args)

	model := simulator.VPX()
	model.Datacenter = *datacenters
	model.Cluster = *clusters
	model.ClusterHost = *clusterHosts
	model.Host = *standalone
	model.Machine = *machines
	model.Datastore = *datastores
	model.Portgroup = *portgroups
	if err := model.Create(); err != nil {
		fmt.Fprintf(os.Stderr, "infradeck-vcsim: creating the model: %v\n", err)
		return 1
	}
	defer model.Remove()
	if *toolsRunning {
		markToolsRunning()
	}

	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *password)}
	model.Service.RegisterEndpoints = true
	shim := newREST(*user, *password, caps)
	simulator.RegisterEndpoint(func(s *simulator.Service, r *simulator.Registry) {
		s.Handle("/api/", shim)
	})
	server := model.Service.NewServer()
	defer server.Close()
	// Before anyone knows the URL, so no request is in flight while the handler changes.
	server.Config.Handler = shim.soapFaults(server.Config.Handler)

	base := *server.URL
	base.User = nil
	base.Path = ""
	fmt.Printf("INFRADECK_VCSIM_URL=%s\n", base.String())
	_ = os.Stdout.Sync()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	if *withParent {
		go watchParent(stop)
	}
	<-stop
	return 0
}

// watchParent: a parent that dies re-parents us; then stop as if signalled.
func watchParent(stop chan<- os.Signal) {
	parent := os.Getppid()
	for os.Getppid() == parent {
		time.Sleep(200 * time.Millisecond)
	}
	stop <- syscall.SIGTERM
}
