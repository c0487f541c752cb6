package main

// Changes to the estate between two syncs, sent over SOAP (vim25) with govmomi's client, as an
// administrator's tool would send them:
//
//	op URL power-off VM | power-on VM | suspend VM | destroy VM
//	op URL snapshot VM NAME DESCRIPTION
//	op URL relocate VM HOST
//	op URL add-host ADDRESS           (a standalone host, named by that address)
//	op URL rename-vm VM NEW-NAME
//	op URL guest VM HOSTNAME IP       (Tools running, reporting that host name and address)
//	op URL disconnect-host HOST
//	op URL list-vms                   (one "name<TAB>moid<TAB>host name" per line)
//
// URL carries the credentials (http://user:pass@127.0.0.1:PORT). Exit 0 on success; otherwise
// the error on stderr and exit 1 (2 for bad usage).

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sort"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func op(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: infradeck-vcsim op URL ACTION ARGS...")
		return 2
	}
	u, err := url.Parse(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bad URL %q: %v\n", args[0], err)
		return 2
	}
	u.Path = "/sdk"
	ctx := context.Background()
	client, err := govmomi.NewClient(ctx, u, true)
	if err != nil {
		fmt.Fprintf(os.Stderr, "login to %s: %v\n", u.Host, err)
		return 1
	}
	defer func() { _ = client.Logout(ctx) }()
	if err := act(ctx, client.Client, args[1], args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", args[1], err)
		return 1
	}
	return 0
}

func need(args []string, n int, usage string) error {
	if len(args) != n {
		return fmt.Errorf("usage: %s", usage)
	}
	return nil
}

func act(ctx context.Context, c *vim25.Client, action string, args []string) error {
	switch action {
	case "list-vms":
		return listVMs(ctx, c)
	case "power-off", "power-on", "suspend", "destroy":
		if err := need(args, 1, action+" VM"); err != nil {
			return err
		}
		vm, err := findVM(ctx, c, args[0])
		if err != nil {
			return err
		}
		var task *object.Task
		switch action {
		case "power-off":
			task, err = vm.PowerOff(ctx)
		case "power-on":
			task, err = vm.PowerOn(ctx)
		case "suspend":
			task, err = vm.Suspend(ctx)
		default:
			task, err = vm.Destroy(ctx)
		}
		return wait(ctx, task, err)
	case "snapshot":
		if err := need(args, 3, "snapshot VM NAME DESCRIPTION"); err != nil {
			return err
		}
		vm, err := findVM(ctx, c, args[0])
		if err != nil {
			return err
		}
		task, err := vm.CreateSnapshot(ctx, args[1], args[2], false, false)
		return wait(ctx, task, err)
	case "relocate":
		if err := need(args, 2, "relocate VM HOST"); err != nil {
			return err
		}
		vm, err := findVM(ctx, c, args[0])
		if err != nil {
			return err
		}
		host, err := lookup(ctx, c, "HostSystem", args[1])
		if err != nil {
			return err
		}
		h := object.NewHostSystem(c, host)
		pool, err := h.ResourcePool(ctx)
		if err != nil {
			return err
		}
		poolRef := pool.Reference()
		task, err := vm.Relocate(ctx, types.VirtualMachineRelocateSpec{Host: &host, Pool: &poolRef}, types.VirtualMachineMovePriorityDefaultPriority)
		return wait(ctx, task, err)
	case "rename-vm":
		if err := need(args, 2, "rename-vm VM NEW-NAME"); err != nil {
			return err
		}
		ref, err := lookup(ctx, c, "VirtualMachine", args[0])
		if err != nil {
			return err
		}
		task, err := object.NewCommon(c, ref).Rename(ctx, args[1])
		return wait(ctx, task, err)
	case "add-host":
		// A host is named by the address it was added by (vCenter cannot rename hosts).
		if err := need(args, 1, "add-host ADDRESS"); err != nil {
			return err
		}
		dc, err := find.NewFinder(c, false).DefaultDatacenter(ctx)
		if err != nil {
			return err
		}
		folders, err := dc.Folders(ctx)
		if err != nil {
			return err
		}
		spec := types.HostConnectSpec{HostName: args[0], UserName: "root", Password: "vcsim", Force: true}
		task, err := folders.HostFolder.AddStandaloneHost(ctx, spec, true, nil, nil)
		return wait(ctx, task, err)
	case "guest":
		if err := need(args, 3, "guest VM HOSTNAME IP"); err != nil {
			return err
		}
		vm, err := findVM(ctx, c, args[0])
		if err != nil {
			return err
		}
		// vcsim applies "SET.<property>" extra-config keys to the VM's own properties: the
		// guest's report, as VMware Tools would send it.
		set := func(key, value string) types.BaseOptionValue {
			return &types.OptionValue{Key: "SET." + key, Value: value}
		}
		spec := types.VirtualMachineConfigSpec{ExtraConfig: []types.BaseOptionValue{
			set("guest.toolsRunningStatus", string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)),
			set("guest.hostName", args[1]),
			set("guest.ipAddress", args[2]),
		}}
		task, err := vm.Reconfigure(ctx, spec)
		return wait(ctx, task, err)
	case "disconnect-host":
		if err := need(args, 1, "disconnect-host HOST"); err != nil {
			return err
		}
		host, err := lookup(ctx, c, "HostSystem", args[0])
		if err != nil {
			return err
		}
		task, err := object.NewHostSystem(c, host).Disconnect(ctx)
		return wait(ctx, task, err)
	}
	return fmt.Errorf("unknown action %q", action)
}

func wait(ctx context.Context, task *object.Task, err error) error {
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}

// lookup: the one object of that type and name, anywhere in the inventory.
func lookup(ctx context.Context, c *vim25.Client, kind, name string) (types.ManagedObjectReference, error) {
	m := view.NewManager(c)
	v, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{kind}, true)
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	defer func() { _ = v.Destroy(ctx) }()
	refs, err := v.Find(ctx, []string{kind}, property.Filter{"name": name})
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	if len(refs) != 1 {
		return types.ManagedObjectReference{}, fmt.Errorf("%d objects of type %s named %q", len(refs), kind, name)
	}
	return refs[0], nil
}

func findVM(ctx context.Context, c *vim25.Client, name string) (*object.VirtualMachine, error) {
	ref, err := lookup(ctx, c, "VirtualMachine", name)
	if err != nil {
		return nil, err
	}
	return object.NewVirtualMachine(c, ref), nil
}

func listVMs(ctx context.Context, c *vim25.Client) error {
	m := view.NewManager(c)
	v, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return err
	}
	defer func() { _ = v.Destroy(ctx) }()
	var vms []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "runtime.host"}, &vms); err != nil {
		return err
	}
	hostNames := map[string]string{}
	var hosts []mo.HostSystem
	hv, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"HostSystem"}, true)
	if err != nil {
		return err
	}
	defer func() { _ = hv.Destroy(ctx) }()
	if err := hv.Retrieve(ctx, []string{"HostSystem"}, []string{"name"}, &hosts); err != nil {
		return err
	}
	for _, h := range hosts {
		hostNames[h.Self.Value] = h.Name
	}
	sort.Slice(vms, func(i, j int) bool { return vms[i].Name < vms[j].Name })
	for _, vm := range vms {
		host := ""
		if vm.Runtime.Host != nil {
			host = hostNames[vm.Runtime.Host.Value]
		}
		fmt.Printf("%s\t%s\t%s\n", vm.Name, vm.Self.Value, host)
	}
	return nil
}
