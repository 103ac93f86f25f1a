#!/bin/bash
# One-off (~50-75 s): build a Debian bookworm (SUITE=trixie also works) guest (systemd, containerd, runc) for vm-run.sh.
# Everything comes from Debian packages. Output in $OUT (default <this folder>/img):
#   vmlinuz + vmlinux (same kernel, uncompressed for PVH boot), initrd.img (tiny busybox
#   initramfs), rootfs.ext4 (3G sparse, ~520M used). Needs root (mmdebstrap root mode, chroot).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$HERE/img}
SUITE=${SUITE:-bookworm}
# the mirror that this machine's apt already uses (first deb822 URIs line or one-line entry)
apt_uri() { { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}';
              grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'; } | grep -v security | head -n1 || true; }
MIRROR=${MIRROR:-$(apt_uri)}
SECMIRROR=${SECMIRROR:-${MIRROR%/debian}/debian-security}
KPKG=${KPKG:-linux-image-amd64}          # generic kernel: has 9p/overlay/veth/br_netfilter modules
EXTRA_PKGS=${EXTRA_PKGS:-}
IMG_SIZE=${IMG_SIZE:-3G}

need() { command -v "$1" >/dev/null || { echo "missing $1 (apt-get install $2)" >&2; exit 1; }; }
need mmdebstrap mmdebstrap; need mkfs.ext4 e2fsprogs; need cpio cpio; need qemu-system-x86_64 qemu-system-x86

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmimg.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root
mkdir -p "$OUT"

PKGS="systemd,systemd-sysv,dbus,udev,kmod,iproute2,procps,util-linux,mount,containerd,runc,iptables,ca-certificates,busybox-static,uidmap,dbus-user-session"
[ -n "$EXTRA_PKGS" ] && PKGS="$PKGS,$EXTRA_PKGS"

# The kernel package is unpacked (not installed) so initramfs-tools and its big
# initrd are skipped; we build our own tiny initrd below.
mmdebstrap --variant=minbase --include="$PKGS" \
  --customize-hook="KPKG=$KPKG sh $HERE/kernel-hook.sh \"\$1\"" \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  "$SUITE" "$ROOT" \
  "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECMIRROR $SUITE-security main"

KVER=$(ls "$ROOT/lib/modules" | sort -V | tail -n1)
# drop module trees a headless VM never loads (~250 MB); keeps net/, fs/, block, virtio, netfilter...
( cd "$ROOT/lib/modules/$KVER/kernel" && rm -rf sound drivers/gpu drivers/media drivers/net/wireless \
    drivers/infiniband drivers/staging drivers/iio drivers/hid drivers/input drivers/bluetooth \
    drivers/usb drivers/scsi drivers/ata drivers/isdn drivers/net/ethernet net/wireless net/mac80211 net/bluetooth )
chroot "$ROOT" depmod "$KVER"
cp "$ROOT/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
# uncompressed ELF vmlinux: qemu boots it via PVH, skipping BIOS real-mode load + in-guest
# decompression (~5 s under TCG)
python3 "$HERE/extract-vmlinux.py" "$OUT/vmlinuz" "$OUT/vmlinux"
rm -f "$ROOT"/boot/initrd.img* "$ROOT"/initrd.img* 2>/dev/null || true

# ---- guest configuration ----
echo vmguest > "$ROOT/etc/hostname"
printf '127.0.0.1 localhost vmguest\n::1 localhost\n' > "$ROOT/etc/hosts"
# root is mounted rw by the initrd; an fstab line would only add a remount + device wait
: > "$ROOT/etc/fstab"
# fixed machine-id => no ConditionFirstBoot units (systemd-firstboot would prompt on the console)
tr -d - < /proc/sys/kernel/random/uuid > "$ROOT/etc/machine-id"
passwd -R "$ROOT" -d root >/dev/null
# newuidmap reads these; the rootless scenarios cover them with their own
touch "$ROOT/etc/subuid" "$ROOT/etc/subgid"
# Units masked for a fast, quiet boot under TCG (each process start costs ~0.1-1 s there).
# KEEP_LOGIND=1 keeps systemd-logind (needed for user sessions / rootless systemd --user tests).
MASK="getty.target serial-getty@ttyS0.service getty@tty1.service systemd-firstboot.service
  e2scrub_reap.service e2scrub_all.timer apt-daily.timer apt-daily-upgrade.timer
  dpkg-db-backup.timer fstrim.timer systemd-timesyncd.service systemd-sysusers.service
  systemd-update-utmp.service systemd-update-utmp-runlevel.service
  modprobe@drm.service modprobe@efi_pstore.service modprobe@dm_mod.service ${MASK_EXTRA:-}"
[ "${KEEP_LOGIND:-0}" = 1 ] || MASK="$MASK systemd-logind.service systemd-user-sessions.service"
for u in $MASK; do
  ln -sf /dev/null "$ROOT/etc/systemd/system/$u"
done
# 9p modules early (systemd-modules-load, in parallel with the rest of sysinit)
printf '9pnet_virtio\n9p\n' > "$ROOT/etc/modules-load.d/vm-9p.conf"
# containerd is installed but not started at boot (tests start it themselves)
rm -f "$ROOT/etc/systemd/system/multi-user.target.wants/containerd.service"

# runner: started (Type=simple, so it does not hold up boot) after multi-user.target
cat > "$ROOT/usr/local/sbin/vm-runner" <<'EOF'
#!/bin/bash
# Runs /run/vmctl/cmd (from the host, 9p tag "vmctl"), writes stdout/stderr/rc back, powers off.
exec </dev/null
C=/run/vmctl
mkdir -p $C /mnt/host
modprobe -q 9pnet_virtio 2>/dev/null; modprobe -q 9p 2>/dev/null
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=none vmctl $C || { echo "VMRUN: cannot mount vmctl" >/dev/ttyS0; systemctl poweroff -ff; }
if grep -qw hostshare /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag 2>/dev/null; then
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=none,access=client hostshare /mnt/host
fi
# VM_NET=1 on the host => qemu user-mode NAT (slirp): static config of its fixed addresses
if grep -qw vmnet=1 /proc/cmdline; then
  for i in $(seq 50); do IF=$(ls /sys/class/net | grep -v '^lo$' | head -n1); [ -n "$IF" ] && break; sleep 0.1; done
  ip link set "$IF" up && ip addr add 10.0.2.15/24 dev "$IF" && ip route add default via 10.0.2.2
  echo "nameserver 10.0.2.3" > /etc/resolv.conf
fi
export HOME=/root USER=root LOGNAME=root LANG=C.UTF-8
# wait until boot is complete (running/degraded); we are Type=simple so we don't block it
timeout 120 systemctl is-system-running --wait >/dev/null 2>&1
echo "$(date +%s.%N) $(cut -d' ' -f1 /proc/uptime)" > $C/t_ready
cd /mnt/host 2>/dev/null || cd /
if [ -s $C/stdin ]; then IN=$C/stdin; else IN=/dev/null; fi
if [ "$(cat $C/stream 2>/dev/null)" = 1 ]; then
  # mirror output to the serial console too (host shows it live)
  bash $C/cmd <$IN > >(tee $C/stdout >/dev/ttyS0) 2> >(tee $C/stderr >/dev/ttyS0); rc=$?
else
  bash $C/cmd <$IN >$C/stdout 2>$C/stderr; rc=$?
fi
sync
echo $rc > $C/rc.tmp && mv $C/rc.tmp $C/rc
sync
systemctl poweroff -ff
EOF
chmod 755 "$ROOT/usr/local/sbin/vm-runner"
cat > "$ROOT/etc/systemd/system/vm-runner.service" <<'EOF'
[Unit]
Description=vm-run command runner
After=multi-user.target
ConditionKernelCommandLine=vmrun=1

[Service]
Type=simple
ExecStart=/usr/local/sbin/vm-runner
# like containerd.service: the command may manage its own cgroup subtree
Delegate=yes
KillMode=process
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/vm-runner.service "$ROOT/etc/systemd/system/multi-user.target.wants/vm-runner.service"
# quieter, faster journald
mkdir -p "$ROOT/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nForwardToConsole=no\n' > "$ROOT/etc/systemd/journald.conf.d/vm.conf"

# ---- tiny initramfs: busybox + virtio/ext4 modules, mounts /dev/vda, switch_root ----
IR=$WORK/initrd
mkdir -p "$IR"/{bin,dev,proc,sys,newroot,lib/modules}
cp "$ROOT/bin/busybox" "$IR/bin/busybox"
for a in sh mount umount switch_root insmod sleep cat echo mkdir; do ln -s busybox "$IR/bin/$a"; done
: > "$IR/modlist"
for m in virtio_pci virtio_blk ext4; do
  chroot "$ROOT" modprobe -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | awk '!seen[$0]++' | while read -r f; do
  b=$(basename "$f")
  case $b in   # busybox insmod wants plain .ko (trixie ships .ko.xz)
    *.ko.xz)  b=${b%.xz};  xz -dc "$ROOT$f" > "$IR/lib/modules/$b" ;;
    *.ko.zst) b=${b%.zst}; chroot "$ROOT" zstd -dcq "$f" > "$IR/lib/modules/$b" ;;
    *) cp "$ROOT$f" "$IR/lib/modules/$b" ;;
  esac
  echo "$b" >> "$IR/modlist"
done
cat > "$IR/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /modlist); do insmod /lib/modules/$m 2>/dev/null; done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
mount -t ext4 -o rw,noatime /dev/vda /newroot || { echo "initrd: cannot mount /dev/vda"; exec sh; }
umount /proc /sys; mount --move /dev /newroot/dev 2>/dev/null || umount /dev
exec switch_root /newroot /sbin/init "$@"
EOF
chmod 755 "$IR/init"
(cd "$IR" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT/initrd.img"

# ---- root filesystem image (no loop device / privileges needed) ----
rm -f "$OUT/rootfs.ext4"
mkfs.ext4 -q -F -L vmroot -d "$ROOT" "$OUT/rootfs.ext4" "$IMG_SIZE"
echo "$KVER" > "$OUT/kver"
ls -la "$OUT"
