"""Consul-style DNS interface over a ConsulState (UDP and TCP on the same port).

Follows agent/dns.go (Consul 1.x) with the agent's default dns_config:
  * only_passing=false: instances with a *critical* check are hidden, warning ones are served;
  * udp_answer_limit=3: a UDP query without EDNS gets at most 3 answers (then the 512-byte cut);
  * enable_truncate=false: trimmed UDP answers do not set TC;
  * TTLs 0, AA set, RA clear (no recursors), node meta as TXT in the additional section;
  * unknown name, or a service with no usable instance -> NXDOMAIN + SOA in authority;
    known name without records of the asked type -> NOERROR + SOA (NODATA);
  * names outside the domain -> REFUSED; unresolvable in-addr.arpa -> SERVFAIL (no recursors).
Deviation: answers are sorted (node, service ID) instead of shuffled, so tests are deterministic.
DNS reads the catalog with full rights (as if the agent had a default token).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
import threading
import time
from typing import Self

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.reversename
import dns.rrset

from nomad_standin.consul import ConsulState

log = logging.getLogger("standin.dns")

MAX_UDP_ANSWER_LIMIT = 8  # hard cap in dns.go
DEFAULT_MAX_UDP_SIZE = 512
MAX_UDP_DATAGRAM = 65535 - 68
MAX_TCP_SIZE = 65523
IN = dns.rdataclass.IN
T = dns.rdatatype

_Rec = tuple[dns.name.Name, int, dns.rdata.Rdata]


class _NXDomain(Exception):
    pass


class _NoData(Exception):
    pass


def _ip(addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(addr)
    except ValueError:
        return None


def _rdata(rdtype: int, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(IN, rdtype, text)


def _addr_record(
    qtype: int, ip: ipaddress.IPv4Address | ipaddress.IPv6Address
) -> tuple[int, dns.rdata.Rdata] | None:
    """makeARecord: which address record (if any) a query type gets for this IP."""
    if ip.version == 4:
        if qtype in (T.SRV, T.A, T.ANY, T.NS, T.TXT):
            return T.A, _rdata(T.A, str(ip))
        return None
    if qtype in (T.SRV, T.AAAA, T.ANY, T.NS, T.TXT):
        return T.AAAA, _rdata(T.AAAA, str(ip))
    return None


def _translate(accept: str, default: str, v4: str, v6: str) -> str:
    """translateAddressAccept: prefer tagged v6/v4 addresses matching the query family."""
    if accept in ("v6", "any") and v6:
        return v6
    if accept in ("v4", "any") and v4:
        return v4
    if accept == "any" and default:
        return default
    ip = _ip(default)
    if ip is not None and ip.version == 4 and accept == "v4":
        return default
    if ip is not None and ip.version == 6 and accept == "v6":
        return default
    if ip is None and default:
        return default  # hostnames are always accepted (TranslateAddressAcceptDomain)
    return ""


def _rfc1464(key: str, value: str) -> str:
    key = key.replace("`", "``").replace("=", "`=")
    stripped = key.lstrip(" ")
    key = "` " * (len(key) - len(stripped)) + stripped
    stripped = key.rstrip(" ")
    key = stripped + "` " * (len(key) - len(stripped))
    return key + "=" + value.replace("`", "``")


class DNSServer:
    def __init__(
        self,
        state: ConsulState,
        host: str = "127.0.0.1",
        port: int = 0,
        domain: str = "consul",
        *,
        only_passing: bool = False,
        udp_answer_limit: int = 3,
        enable_truncate: bool = False,
        node_meta_txt: bool = True,
    ) -> None:
        self.state = state
        self.host = host
        self.port = port
        self.domain = dns.name.from_text(domain.strip(".").lower() + ".")
        self.only_passing = only_passing
        self.udp_answer_limit = udp_answer_limit
        self.enable_truncate = enable_truncate
        self.node_meta_txt = node_meta_txt
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> DNSServer:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(50):  # port 0: find a number free for both UDP and TCP
            udp = socket.socket(family, socket.SOCK_DGRAM)
            udp.bind((self.host, self.port))
            port = udp.getsockname()[1]
            tcp = socket.socket(family, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((self.host, port))
            except OSError:
                udp.close()
                tcp.close()
                if self.port:
                    raise
                continue
            break
        else:
            raise OSError("no port free for both UDP and TCP")
        tcp.listen(64)
        udp.settimeout(0.2)
        tcp.settimeout(0.2)
        self._udp, self._tcp, self.port = udp, tcp, port
        self._stop.clear()
        for target in (self._serve_udp, self._serve_tcp):
            t = threading.Thread(target=target, name=f"standin-dns-{target.__name__}", daemon=True)
            t.start()
            self._threads.append(t)
        log.debug("consul DNS stand-in on %s:%d (domain %s)", self.host, self.port, self.domain)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        self._threads.clear()
        for s in (self._udp, self._tcp):
            if s is not None:
                s.close()
        self._udp = self._tcp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve_udp(self) -> None:
        assert self._udp is not None
        sock = self._udp
        while not self._stop.is_set():
            try:
                data, peer = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            out = self.handle(data, "udp")
            if out is not None:
                try:
                    sock.sendto(out, peer)
                except OSError as exc:
                    log.warning("dns: failed to respond to %s: %s", peer, exc)

    def _serve_tcp(self) -> None:
        assert self._tcp is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._tcp_conn, args=(conn,), daemon=True).start()

    def _tcp_conn(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            with conn:
                while not self._stop.is_set():
                    head = self._recv_exact(conn, 2)
                    if head is None:
                        return
                    data = self._recv_exact(conn, struct.unpack("!H", head)[0])
                    if data is None:
                        return
                    out = self.handle(data, "tcp")
                    if out is None:
                        return
                    conn.sendall(struct.pack("!H", len(out)) + out)
        except OSError:
            return

    @staticmethod
    def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    # ------------------------------------------------------------------ request handling

    def handle(self, wire: bytes, transport: str = "udp") -> bytes | None:
        """Answer one DNS message (wire format in, wire format out; None = drop)."""
        try:
            query = dns.message.from_wire(wire)
        except (dns.exception.DNSException, ValueError, struct.error):  # malformed: FORMERR
            if len(wire) < 12:
                return None
            qid = struct.unpack("!H", wire[:2])[0]
            return struct.pack("!HHHHHH", qid, 0x8000 | dns.rcode.FORMERR, 0, 0, 0, 0)
        try:
            resp = self._respond(query, transport)
            return resp.to_wire(max_size=65535, want_shuffle=False)
        except Exception:
            log.exception("dns: failed to answer %s", query.question)
            resp = dns.message.make_response(query)
            resp.set_rcode(dns.rcode.SERVFAIL)
            return resp.to_wire()

    def _respond(self, query: dns.message.Message, transport: str) -> dns.message.Message:
        payload = query.payload if query.edns >= 0 else 0
        resp = dns.message.make_response(query, our_payload=max(payload, 512))
        resp.flags &= ~dns.flags.RA
        if not query.question:
            resp.set_rcode(dns.rcode.REFUSED)
            return resp
        q = query.question[0]
        qname, qtype = q.name, q.rdtype
        log.debug("dns query %s %s via %s", qname, T.to_text(qtype), transport)
        if qname.is_subdomain(self.domain):
            resp.flags |= dns.flags.AA
            answer, authority, extra = self._handle_domain(qname, qtype, resp)
        elif qname.is_subdomain(dns.name.from_text("arpa.")):
            resp.flags |= dns.flags.AA
            answer, authority, extra = self._handle_ptr(qname, qtype, resp)
        else:
            # No recursors configured: miekg/dns ServeMux refuses names it has no handler for.
            resp.set_rcode(dns.rcode.REFUSED)
            return resp
        self._trim(query, resp, transport, answer, authority, extra)
        return resp

    def _soa(self) -> _Rec:
        serial = int(time.time()) & 0xFFFFFFFF
        d = self.domain.to_text()
        return self.domain, T.SOA, _rdata(T.SOA, f"ns.{d} hostmaster.{d} {serial} 3600 600 86400 0")

    def _nameservers(self) -> tuple[list[_Rec], list[_Rec]]:
        ns, glue = [], []
        for entry in self.state.check_service_nodes("consul"):
            if any(c["Status"] == "critical" for c in entry["Checks"]):
                continue
            node = entry["Node"]
            if not node["Node"].replace("-", "").isalnum():
                continue
            fqdn = dns.name.from_text(
                f"{node['Node']}.node.{node['Datacenter']}.{self.domain}".lower()
            )
            ns.append((self.domain, T.NS, _rdata(T.NS, fqdn.to_text())))
            ip = _ip(node["Address"])
            if ip is not None:
                rec = _addr_record(T.ANY, ip)
                if rec:
                    glue.append((fqdn, rec[0], rec[1]))
            if len(ns) >= 3:
                break
        return ns, glue

    def _handle_domain(
        self, qname: dns.name.Name, qtype: int, resp: dns.message.Message
    ) -> tuple[list[_Rec], list[_Rec], list[_Rec]]:
        if qtype == T.SOA:
            ns, glue = self._nameservers()
            return [self._soa()], ns, glue
        if qtype == T.NS:
            ns, glue = self._nameservers()
            return ns, [], glue
        if qtype == T.AXFR:
            resp.set_rcode(dns.rcode.NOTIMP)
            return [], [], []
        answer: list[_Rec] = []
        extra: list[_Rec] = []
        try:
            self._dispatch(qname, qtype, answer, extra)
        except _NXDomain:
            resp.set_rcode(dns.rcode.NXDOMAIN)
            return [], [self._soa()], []
        except _NoData:
            return [], [self._soa()], []
        return answer, [], extra

    def _locality(self, suffixes: list[str]) -> str | None:
        """parseLocality: [], [dc], [dc, "dc"]; peers are unknown here. None = invalid/unknown."""
        dc = self.state.datacenter
        if len(suffixes) == 0:
            return dc
        if len(suffixes) == 1:
            return suffixes[0]
        if len(suffixes) == 2 and suffixes[1] == "dc":
            return suffixes[0]
        return None

    def _dispatch(
        self, qname: dns.name.Name, qtype: int, answer: list[_Rec], extra: list[_Rec]
    ) -> None:
        labels = [
            lbl.decode("ascii", "replace").lower() for lbl in qname.relativize(self.domain).labels
        ]
        kind, parts, suffixes = "", [], []
        for i in range(len(labels) - 1, -1, -1):
            if labels[i] in ("service", "connect", "virtual", "ingress", "node", "query", "addr"):
                kind, parts, suffixes = labels[i], labels[:i], labels[i + 1 :]
                break
            if qtype == T.SRV and labels[i].startswith("_"):
                kind, parts, suffixes = "service", labels[: i + 1], labels[i + 1 :]
                break
        if kind == "service":
            if not parts:
                raise _NXDomain
            dc = self._locality(suffixes)
            if dc is None or dc != self.state.datacenter:
                raise _NXDomain  # other DCs / peers: "No path to datacenter"
            if len(parts) == 2 and parts[0].startswith("_") and parts[1].startswith("_"):
                tag = "" if parts[1] == "_tcp" else parts[1][1:]  # RFC 2782: _name._tag
                service = parts[0][1:]
            else:
                tag = ".".join(parts[:-1])
                service = parts[-1]
            self._service_lookup(qname, qtype, dc, service, tag, answer, extra)
        elif kind == "node":
            if not parts:
                raise _NXDomain
            dc = self._locality(suffixes)
            if dc is None or dc != self.state.datacenter:
                raise _NXDomain
            self._node_lookup(qname, qtype, ".".join(parts), answer, extra)
        elif kind == "addr":
            if len(parts) != 1:
                raise _NXDomain
            try:
                raw = bytes.fromhex(parts[0])
            except ValueError:
                raise _NXDomain from None
            if len(raw) == 4:
                rec = (qname, T.A, _rdata(T.A, str(ipaddress.IPv4Address(raw))))
                (answer if qtype in (T.A, T.ANY) else extra).append(rec)
            elif len(raw) == 16:
                rec = (qname, T.AAAA, _rdata(T.AAAA, str(ipaddress.IPv6Address(raw))))
                (answer if qtype in (T.AAAA, T.ANY) else extra).append(rec)
        elif kind == "virtual":
            return  # no virtual IPs without service mesh: empty NOERROR
        else:
            # connect/ingress (no mesh), query (no prepared queries), or an unparsable name.
            raise _NXDomain

    def _usable(self, entry: dict) -> bool:
        for c in entry["Checks"]:
            if c["Status"] == "critical" or (self.only_passing and c["Status"] != "passing"):
                return False
        return True

    def _service_lookup(
        self,
        qname: dns.name.Name,
        qtype: int,
        dc: str,
        service: str,
        tag: str,
        answer: list[_Rec],
        extra: list[_Rec],
    ) -> None:
        entries = [
            e
            for e in self.state.check_service_nodes(service, [tag] if tag else [])
            if self._usable(e)
        ]
        if not entries:
            raise _NXDomain
        if qtype == T.SRV:
            seen: set[str] = set()
            for e in entries:
                svc, node = e["Service"], e["Node"]
                tup = f"{node['Node']}:{svc['Address']}:{svc['Port']}"
                if tup in seen:
                    continue
                seen.add(tup)
                self._node_service_records(qname, qtype, dc, e, answer, extra)
                if self.node_meta_txt:
                    owner = dns.name.from_text(f"{node['Node']}.node.{dc}.{self.domain}")
                    extra.extend(self._meta_txt(owner, node))
        else:
            seen = set()
            for e in entries:
                recs: list[_Rec] = []
                self._node_service_records(qname, qtype, dc, e, recs, [])
                if not recs:
                    continue
                key = f"{recs[0][0]} {recs[0][1]} {recs[0][2]}"
                if key in seen:  # same address twice (several ports on one IP)
                    continue
                seen.add(key)
                answer.extend(recs)
        if not answer:
            raise _NoData

    def _node_service_records(
        self,
        qname: dns.name.Name,
        qtype: int,
        dc: str,
        e: dict,
        answer: list[_Rec],
        extra: list[_Rec],
    ) -> None:
        svc, node = e["Service"], e["Node"]
        accept = "v4" if qtype == T.A else "v6" if qtype == T.AAAA else "any"
        sta = svc.get("TaggedAddresses") or {}
        service_addr = _translate(
            accept,
            svc["Address"],
            sta.get("lan_ipv4", {}).get("Address", ""),
            sta.get("lan_ipv6", {}).get("Address", ""),
        )
        nta = node.get("TaggedAddresses") or {}
        node_addr = _translate(
            accept, node["Address"], nta.get("lan_ipv4", ""), nta.get("lan_ipv6", "")
        )
        if not service_addr and not node_addr:
            return
        node_ip, service_ip = _ip(node_addr), _ip(service_addr)
        weight = self._weight(e)
        if not service_addr and node_ip is not None:
            target = dns.name.from_text(f"{node['Node']}.node.{dc}.{self.domain}")
            self._ip_records(qname, qtype, node_ip, target, svc["Port"], weight, answer, extra)
        elif not service_addr:
            self._fqdn_records(qname, qtype, node_addr, svc["Port"], weight, answer)
        elif service_ip is not None:
            hexip = service_ip.packed.hex()
            target = dns.name.from_text(f"{hexip}.addr.{dc}.{self.domain}")
            self._ip_records(qname, qtype, service_ip, target, svc["Port"], weight, answer, extra)
        elif dns.name.from_text(service_addr) == qname and node_ip is not None:
            target = dns.name.from_text(f"{node['Node']}.node.{dc}.{self.domain}")
            self._ip_records(qname, qtype, node_ip, target, svc["Port"], weight, answer, extra)
        else:
            self._fqdn_records(qname, qtype, service_addr, svc["Port"], weight, answer)

    @staticmethod
    def _ip_records(
        qname: dns.name.Name,
        qtype: int,
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
        target: dns.name.Name,
        port: int,
        weight: int,
        answer: list[_Rec],
        extra: list[_Rec],
    ) -> None:
        rec = _addr_record(qtype, ip)
        if rec is None:
            return
        if qtype == T.SRV:
            answer.append((qname, T.SRV, _rdata(T.SRV, f"1 {weight} {port} {target}")))
            extra.append((target, rec[0], rec[1]))
        else:
            answer.append((qname, rec[0], rec[1]))

    @staticmethod
    def _fqdn_records(
        qname: dns.name.Name, qtype: int, host: str, port: int, weight: int, answer: list[_Rec]
    ) -> None:
        # External (hostname) addresses: CNAME / SRV to the host; nothing resolves it (no recursors).
        target = dns.name.from_text(host)
        if qtype == T.SRV:
            answer.append((qname, T.SRV, _rdata(T.SRV, f"1 {weight} {port} {target}")))
        else:
            answer.append((qname, T.CNAME, _rdata(T.CNAME, target.to_text())))

    @staticmethod
    def _weight(e: dict) -> int:
        statuses = {c["Status"] for c in e["Checks"]}
        weights = e["Service"].get("Weights") or {"Passing": 1, "Warning": 1}
        if "critical" in statuses:
            return 0
        if "warning" in statuses:
            return int(weights.get("Warning", 1))
        return int(weights.get("Passing", 1))

    def _meta_txt(self, owner: dns.name.Name, node: dict) -> list[_Rec]:
        out = []
        for k in sorted(node.get("Meta") or {}):
            v = node["Meta"][k]
            txt = v if k.lower().startswith("rfc1035-") else _rfc1464(k, v)
            out.append((owner, T.TXT, dns.rdtypes.ANY.TXT.TXT(IN, T.TXT, [txt.encode()])))
        return out

    def _node_lookup(
        self, qname: dns.name.Name, qtype: int, name: str, answer: list[_Rec], extra: list[_Rec]
    ) -> None:
        if qtype not in (T.ANY, T.A, T.AAAA, T.TXT):
            return
        node = self.state.get_node(name)
        if node is None:
            raise _NXDomain
        if qtype != T.TXT:
            accept = "v4" if qtype == T.A else "v6" if qtype == T.AAAA else "any"
            nta = node.get("TaggedAddresses") or {}
            addr = _translate(
                accept, node["Address"], nta.get("lan_ipv4", ""), nta.get("lan_ipv6", "")
            )
            ip = _ip(addr)
            if ip is None and addr:
                answer.append((qname, T.CNAME, _rdata(T.CNAME, dns.name.from_text(addr).to_text())))
            elif ip is not None:
                rec = _addr_record(qtype, ip)
                if rec:
                    answer.append((qname, rec[0], rec[1]))
        if self.node_meta_txt or qtype in (T.TXT, T.ANY):
            (answer if qtype in (T.TXT, T.ANY) else extra).extend(self._meta_txt(qname, node))

    def _handle_ptr(
        self, qname: dns.name.Name, qtype: int, resp: dns.message.Message
    ) -> tuple[list[_Rec], list[_Rec], list[_Rec]]:
        authority = [self._soa()] if qtype == T.SOA else []
        try:
            addr = dns.reversename.to_address(qname)
        except (dns.exception.DNSException, ValueError):
            addr = ""
        for node in self.state.list_nodes():
            if node["Address"] == addr:
                target = f"{node['Node']}.node.{node['Datacenter']}.{self.domain}"
                return [(qname, T.PTR, _rdata(T.PTR, target))], authority, []
        for svc in self.state.services_with_address(addr):
            target = f"{svc['Service']}.service.{self.state.datacenter}.{self.domain}"
            return [(qname, T.PTR, _rdata(T.PTR, target))], authority, []
        resp.set_rcode(dns.rcode.SERVFAIL)  # would go to recursors; there are none
        return [], [], []

    # ------------------------------------------------------------------ sections and trimming

    @staticmethod
    def _fill(
        resp: dns.message.Message, answer: list[_Rec], authority: list[_Rec], extra: list[_Rec]
    ) -> None:
        def group(recs: list[_Rec]) -> list[dns.rrset.RRset]:
            # Same owner+type -> one RRset (duplicate rdata collapse, as clients would do).
            sets: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}
            for name, rdtype, rd in recs:
                rrset = sets.get((name, rdtype))
                if rrset is None:
                    rrset = sets[(name, rdtype)] = dns.rrset.RRset(name, IN, rdtype)
                rrset.add(rd, ttl=0)
            return list(sets.values())

        resp.answer, resp.authority, resp.additional = group(answer), group(authority), group(extra)

    @staticmethod
    def _sync_extra(answer: list[_Rec], extra: list[_Rec]) -> list[_Rec]:
        """syncExtra: keep only the first additional record for each remaining SRV target."""
        index: dict[dns.name.Name, _Rec] = {}
        for rec in extra:
            index.setdefault(rec[0], rec)
        out, done = [], set()
        for _name, rdtype, rd in answer:
            if rdtype != T.SRV or rd.target in done:
                continue
            done.add(rd.target)
            if rd.target in index:
                out.append(index[rd.target])
        return out

    def _trim(
        self,
        query: dns.message.Message,
        resp: dns.message.Message,
        transport: str,
        answer: list[_Rec],
        authority: list[_Rec],
        extra: list[_Rec],
    ) -> None:
        n_before = len(answer)
        if transport == "udp":
            max_size = DEFAULT_MAX_UDP_SIZE
            if query.edns >= 0 and query.payload > max_size:
                max_size = min(query.payload, MAX_UDP_DATAGRAM)
            limit = min(MAX_UDP_ANSWER_LIMIT, self.udp_answer_limit)
            if max_size == DEFAULT_MAX_UDP_SIZE and len(answer) > limit:
                answer = answer[:limit]
                if extra:
                    extra = self._sync_extra(answer, extra)
            max_size -= 8  # UDP header
        else:
            max_size = MAX_TCP_SIZE
            cap = 1024 if query.question and query.question[0].rdtype == T.SRV else 4096
            answer = answer[:cap]
        self._fill(resp, answer, authority, extra)
        while len(answer) > 1 and len(resp.to_wire(max_size=65535, want_shuffle=False)) > max_size:
            authority = []
            answer = answer[:-1]
            if extra:
                extra = self._sync_extra(answer, extra)
            self._fill(resp, answer, authority, extra)
        if len(answer) < n_before and self.enable_truncate:
            resp.flags |= dns.flags.TC


__all__ = ["DNSServer"]
