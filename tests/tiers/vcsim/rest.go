package main

// The Automation REST endpoints infradeck reads (/api/session, /api/vcenter/...), answered from
// simulator.Map: every name, moid, UUID, MAC and placement is vcsim's own. Shapes follow VMware's
// API reference (see ../shared/reference/source-apis.md, section 1): filters are repeated query
// parameters ANDed together, lists have no paging and fail with UNABLE_TO_ALLOCATE_RESOURCE above
// their cap, errors are {error_type, messages}.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"unicode"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Result caps of a real vCenter 7/8 (lowered by flags so tests can reach them).
type caps struct {
	vm, host, cluster, datastore, network *int
}

func capsFromFlags(flags *flag.FlagSet) caps {
	return caps{
		vm:        flags.Int("cap-vm", 4000, "VM list cap"),
		host:      flags.Int("cap-host", 2500, "host list cap"),
		cluster:   flags.Int("cap-cluster", 1000, "cluster list cap"),
		datastore: flags.Int("cap-datastore", 2500, "datastore list cap"),
		network:   flags.Int("cap-network", 1000, "network list cap"),
	}
}

type rest struct {
	user, password string
	caps           caps
	mu             sync.Mutex
	sessions       map[string]bool
	mux            *http.ServeMux
	// A SOAP fault every /sdk call but RetrieveServiceContent answers, when set (tests).
	soapFault string
}

func newREST(user, password string, c caps) *rest {
	r := &rest{user: user, password: password, caps: c, sessions: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/session", r.session)
	mux.HandleFunc("/api/vcenter/datacenter", r.authed(r.listDatacenters))
	mux.HandleFunc("/api/vcenter/cluster", r.authed(r.listClusters))
	mux.HandleFunc("/api/vcenter/host", r.authed(r.listHosts))
	mux.HandleFunc("/api/vcenter/vm", r.authed(r.listVMs))
	mux.HandleFunc("/api/vcenter/vm/", r.authed(r.vm))
	mux.HandleFunc("/api/vcenter/datastore", r.authed(r.listDatastores))
	mux.HandleFunc("/api/vcenter/network", r.authed(r.listNetworks))
	mux.HandleFunc("/api/infradeck-shim/caps", r.setCaps)
	mux.HandleFunc("/api/infradeck-shim/soap-fault", r.setSoapFault)
	r.mux = mux
	return r
}

func (r *rest) ServeHTTP(w http.ResponseWriter, req *http.Request) { r.mux.ServeHTTP(w, req) }

// ------------------------------------------------------------------------------ answers

func reply(w http.ResponseWriter, status int, body interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func fail(w http.ResponseWriter, status int, errorType, id, message string, args ...string) {
	if args == nil {
		args = []string{}
	}
	reply(w, status, map[string]interface{}{
		"error_type": errorType,
		"messages":   []interface{}{map[string]interface{}{"id": id, "default_message": message, "args": args}},
	})
}

func notFound(w http.ResponseWriter, what, id string) {
	fail(w, http.StatusNotFound, "NOT_FOUND", "com.vmware.api.vcenter."+what+".not_found",
		fmt.Sprintf("Object with identifier '%s' does not exist.", id), id)
}

func tooMany(w http.ResponseWriter, what string) {
	fail(w, http.StatusBadRequest, "UNABLE_TO_ALLOCATE_RESOURCE",
		"com.vmware.api.vcenter."+what+".too_many_matches",
		"Too many matches. Add more filter criteria to reduce the number.")
}

// A list answer, or UNABLE_TO_ALLOCATE_RESOURCE when it is longer than the cap (no truncation,
// as vCenter does). Sorted by id so answers are stable.
func list(w http.ResponseWriter, what string, cap int, idKey string, items []map[string]interface{}) {
	if len(items) > cap {
		tooMany(w, what)
		return
	}
	sort.Slice(items, func(i, j int) bool {
		return fmt.Sprint(items[i][idKey]) < fmt.Sprint(items[j][idKey])
	})
	if items == nil {
		items = []map[string]interface{}{}
	}
	reply(w, http.StatusOK, items)
}

// ------------------------------------------------------------------------------ sessions

func (r *rest) session(w http.ResponseWriter, req *http.Request) {
	switch req.Method {
	case http.MethodPost:
		user, pass, ok := req.BasicAuth()
		if !ok || user != r.user || pass != r.password {
			unauthenticated(w)
			return
		}
		raw := make([]byte, 16)
		_, _ = rand.Read(raw)
		token := hex.EncodeToString(raw)
		r.mu.Lock()
		r.sessions[token] = true
		r.mu.Unlock()
		reply(w, http.StatusCreated, token)
	case http.MethodDelete:
		r.mu.Lock()
		delete(r.sessions, req.Header.Get("vmware-api-session-id"))
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		if !r.valid(req) {
			unauthenticated(w)
			return
		}
		reply(w, http.StatusOK, map[string]string{"user": "VSPHERE.LOCAL\\" + r.user})
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// cap reads a list cap (tests change them while requests are served).
func (r *rest) cap(c *int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return *c
}

// setCaps: PUT /api/infradeck-shim/caps?datastore=N&... changes list caps at run time, so a test
// can sync once in full and then against a list over its cap (not a vCenter endpoint).
func (r *rest) setCaps(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPut {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	fields := map[string]*int{
		"vm": r.caps.vm, "host": r.caps.host, "cluster": r.caps.cluster,
		"datastore": r.caps.datastore, "network": r.caps.network,
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, values := range req.URL.Query() {
		field, ok := fields[key]
		var n int
		if _, err := fmt.Sscan(values[0], &n); !ok || err != nil || n < 0 {
			http.Error(w, "bad cap "+key+"="+values[0], http.StatusBadRequest)
			return
		}
		*field = n
	}
	w.WriteHeader(http.StatusNoContent)
}

func unauthenticated(w http.ResponseWriter) {
	fail(w, http.StatusUnauthorized, "UNAUTHENTICATED",
		"com.vmware.vapi.endpoint.method.authentication.required", "Authentication required.")
}

func (r *rest) valid(req *http.Request) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions[req.Header.Get("vmware-api-session-id")]
}

func (r *rest) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if !r.valid(req) {
			unauthenticated(w)
			return
		}
		if req.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		h(w, req)
	}
}

// ------------------------------------------------------------------------------ filters

type filter map[string][]string

// accepts: an absent filter accepts everything; a present one needs the value among its own.
func (f filter) accepts(key, value string) bool {
	values, ok := f[key]
	if !ok {
		return true
	}
	for _, v := range values {
		if v == value {
			return true
		}
	}
	return false
}

// acceptsAny: for filters over a set (the folders an object is in).
func (f filter) acceptsAny(key string, values []string) bool {
	if _, ok := f[key]; !ok {
		return true
	}
	for _, v := range values {
		if f.accepts(key, v) {
			return true
		}
	}
	return false
}

// ------------------------------------------------------------------------------ inventory

// read runs f with the object locked, as vcsim's own SOAP handlers do.
func read(obj mo.Reference, f func()) { simulator.Map.WithLock(obj, f) }

func entities(kind string) []mo.Entity { return simulator.Map.All(kind) }

// ancestors: the moids of every entity above obj (folders, datacenter, compute resource).
func ancestors(obj mo.Entity) []types.ManagedObjectReference {
	var out []types.ManagedObjectReference
	parent := obj.Entity().Parent
	for parent != nil {
		out = append(out, *parent)
		up, ok := simulator.Map.Get(*parent).(mo.Entity)
		if !ok {
			break
		}
		parent = up.Entity().Parent
	}
	return out
}

func datacenterOf(obj mo.Entity) string {
	for _, ref := range ancestors(obj) {
		if ref.Type == "Datacenter" {
			return ref.Value
		}
	}
	return ""
}

func foldersOf(obj mo.Entity) []string {
	var out []string
	for _, ref := range ancestors(obj) {
		if ref.Type == "Folder" {
			out = append(out, ref.Value)
		}
	}
	return out
}

// upperSnake: vim25 enum values (camelCase) as the REST API spells them.
func upperSnake(s string) string {
	var b strings.Builder
	runes := []rune(s)
	for i, c := range runes {
		if i > 0 {
			prev := runes[i-1]
			boundary := (unicode.IsUpper(c) && !unicode.IsUpper(prev)) ||
				(unicode.IsDigit(c) && !unicode.IsDigit(prev)) ||
				(!unicode.IsDigit(c) && unicode.IsDigit(prev))
			if boundary {
				b.WriteRune('_')
			}
		}
		b.WriteRune(unicode.ToUpper(c))
	}
	return b.String()
}

// guestOS: `ubuntu64Guest` → `UBUNTU_64`, `otherGuest` → `OTHER`, as vCenter's REST API names
// guest OS identifiers.
func guestOS(id string) string {
	id = strings.Replace(id, "Guest", "", 1)
	if id == "" {
		return "OTHER"
	}
	return upperSnake(id)
}

func (r *rest) listDatacenters(w http.ResponseWriter, req *http.Request) {
	f := filter(req.URL.Query())
	var items []map[string]interface{}
	for _, e := range entities("Datacenter") {
		read(e, func() {
			m := e.Entity()
			if f.accepts("datacenters", m.Self.Value) && f.accepts("names", m.Name) &&
				f.acceptsAny("folders", foldersOf(e)) {
				items = append(items, map[string]interface{}{"datacenter": m.Self.Value, "name": m.Name})
			}
		})
	}
	list(w, "datacenter", 1000, "datacenter", items)
}

func (r *rest) listClusters(w http.ResponseWriter, req *http.Request) {
	f := filter(req.URL.Query())
	var items []map[string]interface{}
	for _, e := range entities("ClusterComputeResource") {
		c, ok := e.(*simulator.ClusterComputeResource)
		if !ok {
			continue
		}
		read(c, func() {
			if !f.accepts("clusters", c.Self.Value) || !f.accepts("names", c.Name) ||
				!f.accepts("datacenters", datacenterOf(c)) || !f.acceptsAny("folders", foldersOf(c)) {
				return
			}
			ha, drs := false, false
			if cfg, ok := c.ConfigurationEx.(*types.ClusterConfigInfoEx); ok && cfg != nil {
				ha = cfg.DasConfig.Enabled != nil && *cfg.DasConfig.Enabled
				drs = cfg.DrsConfig.Enabled != nil && *cfg.DrsConfig.Enabled
			}
			items = append(items, map[string]interface{}{
				"cluster": c.Self.Value, "name": c.Name, "ha_enabled": ha, "drs_enabled": drs,
			})
		})
	}
	list(w, "cluster", r.cap(r.caps.cluster), "cluster", items)
}

func (r *rest) listHosts(w http.ResponseWriter, req *http.Request) {
	f := filter(req.URL.Query())
	var items []map[string]interface{}
	for _, e := range entities("HostSystem") {
		h, ok := e.(*simulator.HostSystem)
		if !ok {
			continue
		}
		read(h, func() {
			cluster, standalone := "", "true"
			if h.Parent != nil && h.Parent.Type == "ClusterComputeResource" {
				cluster, standalone = h.Parent.Value, "false"
			}
			connection := upperSnake(string(h.Runtime.ConnectionState))
			_, clusterFiltered := f["clusters"]
			if !f.accepts("hosts", h.Self.Value) || !f.accepts("names", h.Name) ||
				(clusterFiltered && !f.accepts("clusters", cluster)) ||
				!f.accepts("standalone", standalone) ||
				!f.accepts("connection_states", connection) ||
				!f.accepts("datacenters", datacenterOf(h)) || !f.acceptsAny("folders", foldersOf(h)) {
				return
			}
			item := map[string]interface{}{"host": h.Self.Value, "name": h.Name, "connection_state": connection}
			// Only a connected host reports its power state.
			if connection == "CONNECTED" {
				item["power_state"] = upperSnake(string(h.Runtime.PowerState))
			}
			items = append(items, item)
		})
	}
	list(w, "host", r.cap(r.caps.host), "host", items)
}

func restPower(s types.VirtualMachinePowerState) string {
	switch s {
	case types.VirtualMachinePowerStatePoweredOn:
		return "POWERED_ON"
	case types.VirtualMachinePowerStatePoweredOff:
		return "POWERED_OFF"
	case types.VirtualMachinePowerStateSuspended:
		return "SUSPENDED"
	}
	return upperSnake(string(s))
}

func (r *rest) listVMs(w http.ResponseWriter, req *http.Request) {
	f := filter(req.URL.Query())
	var items []map[string]interface{}
	for _, e := range entities("VirtualMachine") {
		vm, ok := e.(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		read(vm, func() {
			if vm.Config != nil && vm.Config.Template {
				return
			}
			host, cluster, pool := "", "", ""
			if vm.Runtime.Host != nil {
				host = vm.Runtime.Host.Value
				if h, ok := simulator.Map.Get(*vm.Runtime.Host).(*simulator.HostSystem); ok &&
					h.Parent != nil && h.Parent.Type == "ClusterComputeResource" {
					cluster = h.Parent.Value
				}
			}
			if vm.ResourcePool != nil {
				pool = vm.ResourcePool.Value
			}
			power := restPower(vm.Runtime.PowerState)
			_, clusterFiltered := f["clusters"]
			if !f.accepts("vms", vm.Self.Value) || !f.accepts("names", vm.Name) ||
				!f.accepts("hosts", host) || (clusterFiltered && !f.accepts("clusters", cluster)) ||
				!f.accepts("resource_pools", pool) || !f.accepts("power_states", power) ||
				!f.accepts("datacenters", datacenterOf(vm)) || !f.acceptsAny("folders", foldersOf(vm)) {
				return
			}
			item := map[string]interface{}{"vm": vm.Self.Value, "name": vm.Name, "power_state": power}
			if vm.Config != nil {
				item["cpu_count"] = vm.Config.Hardware.NumCPU
				item["memory_size_MiB"] = vm.Config.Hardware.MemoryMB
			}
			items = append(items, item)
		})
	}
	list(w, "vm", r.cap(r.caps.vm), "vm", items)
}

func (r *rest) listDatastores(w http.ResponseWriter, req *http.Request) {
	f := filter(req.URL.Query())
	var items []map[string]interface{}
	for _, e := range entities("Datastore") {
		ds, ok := e.(*simulator.Datastore)
		if !ok {
			continue
		}
		read(ds, func() {
			kind := ds.Summary.Type
			if !f.accepts("datastores", ds.Self.Value) || !f.accepts("names", ds.Name) ||
				!f.accepts("types", kind) || !f.accepts("datacenters", datacenterOf(ds)) ||
				!f.acceptsAny("folders", foldersOf(ds)) {
				return
			}
			items = append(items, map[string]interface{}{
				"datastore": ds.Self.Value, "name": ds.Name, "type": kind,
				"free_space": ds.Summary.FreeSpace, "capacity": ds.Summary.Capacity,
			})
		})
	}
	list(w, "datastore", r.cap(r.caps.datastore), "datastore", items)
}

// The network types of /api/vcenter/network, by vim25 managed object type.
var networkTypes = map[string]string{
	"Network":                     "STANDARD_PORTGROUP",
	"DistributedVirtualPortgroup": "DISTRIBUTED_PORTGROUP",
	"OpaqueNetwork":               "OPAQUE_NETWORK",
}

func (r *rest) listNetworks(w http.ResponseWriter, req *http.Request) {
	f := filter(req.URL.Query())
	var items []map[string]interface{}
	for kind, restType := range networkTypes {
		for _, e := range entities(kind) {
			read(e, func() {
				m := e.Entity()
				if !f.accepts("networks", m.Self.Value) || !f.accepts("names", m.Name) ||
					!f.accepts("types", restType) || !f.accepts("datacenters", datacenterOf(e)) ||
					!f.acceptsAny("folders", foldersOf(e)) {
					return
				}
				items = append(items, map[string]interface{}{"network": m.Self.Value, "name": m.Name, "type": restType})
			})
		}
	}
	list(w, "network", r.cap(r.caps.network), "network", items)
}

// ------------------------------------------------------------------------------ one VM

func (r *rest) vm(w http.ResponseWriter, req *http.Request) {
	rest := strings.TrimPrefix(req.URL.Path, "/api/vcenter/vm/")
	id, sub := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		id, sub = rest[:i], rest[i+1:]
	}
	vm, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: id}).(*simulator.VirtualMachine)
	if !ok {
		notFound(w, "vm", id)
		return
	}
	var status int
	var body interface{}
	read(vm, func() {
		switch sub {
		case "":
			status, body = http.StatusOK, vmDetail(vm)
		case "tools":
			status, body = http.StatusOK, vmTools(vm)
		case "guest/identity", "guest/networking", "guest/networking/interfaces":
			if vm.Guest == nil || vm.Guest.ToolsRunningStatus != string(types.VirtualMachineToolsRunningStatusGuestToolsRunning) {
				status = http.StatusServiceUnavailable
				body = map[string]interface{}{
					"error_type": "SERVICE_UNAVAILABLE",
					"messages": []interface{}{map[string]interface{}{
						"id":              "com.vmware.api.vcenter.vm.guest.not_running",
						"default_message": "VMware Tools is not running in the virtual machine.",
						"args":            []string{id},
					}},
				}
				return
			}
			status = http.StatusOK
			switch sub {
			case "guest/identity":
				body = guestIdentity(vm)
			case "guest/networking":
				body = guestNetworking(vm)
			default:
				body = guestInterfaces(vm)
			}
		default:
			status = http.StatusNotFound
			body = map[string]interface{}{"error_type": "NOT_FOUND", "messages": []interface{}{}}
		}
	})
	reply(w, status, body)
}

func vmDetail(vm *simulator.VirtualMachine) map[string]interface{} {
	disks := map[string]interface{}{}
	nics := map[string]interface{}{}
	detail := map[string]interface{}{
		"name":        vm.Name,
		"power_state": restPower(vm.Runtime.PowerState),
		"disks":       disks,
		"nics":        nics,
		"cdroms":      map[string]interface{}{}, "floppies": map[string]interface{}{},
		"boot_devices": []interface{}{},
	}
	if vm.Config == nil {
		return detail
	}
	detail["guest_OS"] = guestOS(vm.Config.GuestId)
	detail["identity"] = map[string]interface{}{
		"name": vm.Name, "bios_uuid": vm.Config.Uuid, "instance_uuid": vm.Config.InstanceUuid,
	}
	detail["cpu"] = map[string]interface{}{"count": vm.Config.Hardware.NumCPU, "cores_per_socket": vm.Config.Hardware.NumCoresPerSocket}
	detail["memory"] = map[string]interface{}{"size_MiB": vm.Config.Hardware.MemoryMB}
	detail["hardware"] = map[string]interface{}{"version": upperSnake(strings.Replace(vm.Config.Version, "vmx-", "vmx", 1))}
	for _, device := range vm.Config.Hardware.Device {
		key := fmt.Sprint(device.GetVirtualDevice().Key)
		label := ""
		if info := device.GetVirtualDevice().DeviceInfo; info != nil {
			label = info.GetDescription().Label
		}
		switch d := device.(type) {
		case *types.VirtualDisk:
			disk := map[string]interface{}{"label": label, "type": "SCSI", "capacity": d.CapacityInBytes}
			if d.CapacityInBytes == 0 {
				disk["capacity"] = d.CapacityInKB * 1024
			}
			if b, ok := d.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
				disk["backing"] = map[string]interface{}{"type": "VMDK_FILE", "vmdk_file": b.GetVirtualDeviceFileBackingInfo().FileName}
			}
			disks[key] = disk
		case types.BaseVirtualEthernetCard:
			card := d.GetVirtualEthernetCard()
			state := "NOT_CONNECTED"
			if card.Connectable != nil && card.Connectable.Connected {
				state = "CONNECTED"
			}
			nic := map[string]interface{}{
				"label": label, "type": nicType(device), "mac_address": card.MacAddress,
				"mac_type": strings.ToUpper(card.AddressType), "state": state,
			}
			switch b := card.Backing.(type) {
			case *types.VirtualEthernetCardNetworkBackingInfo:
				backing := map[string]interface{}{"type": "STANDARD_PORTGROUP", "network_name": b.DeviceName}
				if b.Network != nil {
					backing["network"] = b.Network.Value
				}
				nic["backing"] = backing
			case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
				// As vCenter does: no network_name for a distributed port group.
				nic["backing"] = map[string]interface{}{
					"type": "DISTRIBUTED_PORTGROUP", "network": b.Port.PortgroupKey,
					"distributed_switch_uuid": b.Port.SwitchUuid, "distributed_port": b.Port.PortKey,
					"connection_cookie": b.Port.ConnectionCookie,
				}
			case *types.VirtualEthernetCardOpaqueNetworkBackingInfo:
				nic["backing"] = map[string]interface{}{"type": "OPAQUE_NETWORK", "opaque_network_id": b.OpaqueNetworkId}
			}
			nics[key] = nic
		}
	}
	return detail
}

func nicType(device types.BaseVirtualDevice) string {
	switch device.(type) {
	case *types.VirtualVmxnet3:
		return "VMXNET3"
	case *types.VirtualE1000:
		return "E1000"
	case *types.VirtualE1000e:
		return "E1000E"
	case *types.VirtualPCNet32:
		return "PCNET32"
	case *types.VirtualVmxnet2:
		return "VMXNET2"
	}
	return "VMXNET"
}

func vmTools(vm *simulator.VirtualMachine) map[string]interface{} {
	state := "NOT_RUNNING"
	if vm.Guest != nil {
		switch vm.Guest.ToolsRunningStatus {
		case string(types.VirtualMachineToolsRunningStatusGuestToolsRunning):
			state = "RUNNING"
		case string(types.VirtualMachineToolsRunningStatusGuestToolsExecutingScripts):
			state = "EXECUTING_SCRIPTS"
		}
	}
	return map[string]interface{}{"run_state": state, "version_status": "UNMANAGED", "install_type": "OPEN_VM_TOOLS"}
}

func guestIdentity(vm *simulator.VirtualMachine) map[string]interface{} {
	return map[string]interface{}{
		"name":       guestOS(vm.Guest.GuestId),
		"family":     upperSnake(strings.TrimSuffix(vm.Guest.GuestFamily, "Guest")),
		"full_name":  map[string]interface{}{"id": "vmsg.guestos." + vm.Guest.GuestId + ".label", "default_message": vm.Guest.GuestFullName, "args": []string{}},
		"host_name":  vm.Guest.HostName,
		"ip_address": vm.Guest.IpAddress,
	}
}

func guestNetworking(vm *simulator.VirtualMachine) map[string]interface{} {
	host, domain := vm.Guest.HostName, ""
	if i := strings.IndexByte(host, '.'); i >= 0 {
		host, domain = host[:i], host[i+1:]
	}
	return map[string]interface{}{"dns_values": map[string]string{"host_name": host, "domain_name": domain}}
}

func guestInterfaces(vm *simulator.VirtualMachine) []interface{} {
	out := []interface{}{}
	for _, nic := range vm.Guest.Net {
		addresses := []interface{}{}
		if nic.IpConfig != nil && len(nic.IpConfig.IpAddress) > 0 {
			for _, a := range nic.IpConfig.IpAddress {
				origin := upperSnake(a.Origin)
				if origin == "" {
					origin = "MANUAL"
				}
				prefix := a.PrefixLength
				if prefix == 0 {
					prefix = 24
				}
				addresses = append(addresses, map[string]interface{}{
					"ip_address": a.IpAddress, "prefix_length": prefix, "origin": origin, "state": "PREFERRED",
				})
			}
		} else {
			for _, ip := range nic.IpAddress {
				addresses = append(addresses, map[string]interface{}{
					"ip_address": ip, "prefix_length": 24, "origin": "MANUAL", "state": "PREFERRED",
				})
			}
		}
		item := map[string]interface{}{
			"mac_address": nic.MacAddress,
			"ip":          map[string]interface{}{"ip_addresses": addresses},
		}
		if nic.DeviceConfigId != 0 {
			item["nic"] = fmt.Sprint(nic.DeviceConfigId)
		}
		if nic.DnsConfig != nil {
			item["dns_values"] = map[string]string{"host_name": nic.DnsConfig.HostName, "domain_name": nic.DnsConfig.DomainName}
		}
		out = append(out, item)
	}
	return out
}

// markToolsRunning: VMware Tools "running" in every powered-on VM, the state of a healthy estate
// (vcsim creates VMs with Tools not running and has no guest to start them).
func markToolsRunning() {
	for _, e := range entities("VirtualMachine") {
		vm, ok := e.(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		read(vm, func() {
			if vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn && vm.Guest != nil {
				vm.Guest.ToolsRunningStatus = string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
				vm.Guest.ToolsStatus = types.VirtualMachineToolsStatusToolsOk
			}
		})
	}
}

// setSoapFault: PUT /api/infradeck-shim/soap-fault?fault=NotAuthenticated makes every SOAP call
// (but RetrieveServiceContent) answer that fault, as a vCenter whose SOAP side refuses this
// account would; an empty fault clears it. Not a vCenter endpoint.
func (r *rest) setSoapFault(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPut {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	r.mu.Lock()
	r.soapFault = req.URL.Query().Get("fault")
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *rest) soapFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		fault := r.soapFault
		r.mu.Unlock()
		if fault == "" || req.URL.Path != "/sdk" {
			next.ServeHTTP(w, req)
			return
		}
		body, _ := io.ReadAll(req.Body)
		if strings.Contains(string(body), "RetrieveServiceContent") {
			req.Body = io.NopCloser(strings.NewReader(string(body)))
			next.ServeHTTP(w, req)
			return
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>injected %s</faultstring><detail><%sFault xmlns="urn:vim25" xsi:type="%s"></%sFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>`,
			fault, fault, fault, fault)
	})
}
