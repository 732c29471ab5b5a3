/**
 * The Perl program behind SyscallHelper (see syscall-helper.ts for the protocol).
 *
 * Why Perl and not a C helper: nothing to compile or ship per architecture, and Perl's `syscall`
 * passes strings as NUL-terminated pointers and numbers as integers, all these calls need. Only
 * built-ins are used (no POSIX or Fcntl module, not even warnings.pm, whose messages would go
 * to a stderr no one reads): every module loaded adds to the start-up that the first mount of a
 * build waits for.
 *
 * Arguments: the syscall numbers of mount, umount2, llistxattr, lgetxattr, dup3 and unshare.
 */
export const HELPER_SCRIPT = String.raw`
use strict;
my ($MOUNT, $UMOUNT2, $LLIST, $LGET, $DUP3, $UNSHARE) = @ARGV;
binmode STDIN; binmode STDOUT;
$SIG{PIPE} = 'IGNORE';
# what to become when the owner's end of our stdin goes away without disarming us (op W)
my @ORPHAN;
sub done {
  if (@ORPHAN) {
    $SIG{PIPE} = 'DEFAULT';
    open(STDIN, '<', '/dev/null'); open(STDOUT, '>', '/dev/null'); open(STDERR, '>', '/dev/null');
    exec { $ORPHAN[0] } @ORPHAN;
  }
  exit 0;
}
sub out { my $s = shift; while (length $s) { my $n = syswrite(STDOUT, $s); done() unless defined $n; substr($s, 0, $n) = ''; } }
sub uh { return pack('H*', $_[0] // ''); }
sub hx { return unpack('H*', $_[0] // ''); }
# one buffer each for names and values, reused for every file (a fresh 64 KiB a file made a tree
# walk 3x slower than getfattr's)
my $NAMES = "\0" x 65536;
my $VALUE = "\0" x 65536;
sub value {
  my ($p, $name) = @_;
  my $m = syscall($LGET, $p, $name, $VALUE, 65536);
  return (0, substr($VALUE, 0, $m)) if $m >= 0;
  my $e = $! + 0;
  return ($e) unless $e == 34;
  # the size in a variable: a literal one makes Perl fold the 16 MiB string into the compiled
  # program, ~6 ms of every start
  my $size = 16777216;
  my $big = "\0" x $size;
  $m = syscall($LGET, $p, $name, $big, $size);
  return $m >= 0 ? (0, substr($big, 0, $m)) : ($! + 0);
}
sub xattrs {
  my ($p, $acc) = @_;
  my $n = syscall($LLIST, $p, $NAMES, 65536);
  if ($n < 0) { my $e = $! + 0; return ($e == 95 || $e == 61) ? 0 : $e; }
  return 0 if $n == 0;
  my $rec = '';
  for my $name (grep { length } split /\0/, substr($NAMES, 0, $n)) {
    my ($e, $v) = value($p, $name);
    next if $e == 61;
    return $e if $e;
    $rec .= 'A ' . hx($name) . ' ' . hx($v) . "\n";
  }
  $$acc .= 'F ' . hx($p) . "\n" . $rec if length $rec;
  return 0;
}
sub walk {
  my ($p, $acc) = @_;
  my $e = xattrs($p, $acc);
  return $e if $e;
  opendir(my $d, $p) or return $! + 0;
  my @kids = readdir($d);
  closedir($d);
  for my $k (@kids) {
    next if $k eq '.' || $k eq '..';
    my $c = "$p/$k";
    if (!lstat($c)) { next if $! + 0 == 2; return $! + 0; }
    if (-d _) { $e = walk($c, $acc); return $e if $e && $e != 2; }
    else { $e = xattrs($c, $acc); return $e if $e && $e != 2; }
  }
  return 0;
}
# fork and exec argv with the given handles as its fds 0..4 (undef: /dev/null); perl opens
# every handle close-on-exec, so the child gets these and nothing else of ours
sub start {
  my ($argv, @fds) = @_;
  my $pid = fork();
  return undef unless defined $pid;
  return $pid if $pid;
  # first out of the way of the targets (F_DUPFD_CLOEXEC, at 100 or above), then onto them
  my @high;
  for my $fh (@fds) {
    my $h = $fh;
    if (!defined $h) { open($h, '+<', '/dev/null') or exit 127; }
    push(@high, fcntl($h, 1030, 100) // exit 127);
  }
  for my $t (0 .. $#high) { syscall($DUP3, $high[$t] + 0, $t, 0) >= 0 or exit 127; }
  # an ignored signal stays ignored across exec: the child gets the defaults, not ours
  $SIG{$_} = 'DEFAULT' for qw(PIPE INT TERM HUP QUIT);
  exec { $argv->[0] } @$argv;
  exit 127;
}
# wait (at most $secs) until $fh has yielded $tok; false on end of file or time out
sub await_token {
  my ($fh, $tok, $secs) = @_;
  my ($seen, $end) = ('', time + $secs);
  while (index($seen, $tok) < 0) {
    my $left = $end - time;
    return 0 if $left <= 0;
    my $rin = ''; vec($rin, fileno($fh), 1) = 1;
    my $n = select(my $rout = $rin, undef, undef, $left);
    next if $n < 0 && $! + 0 == 4;
    return 0 if $n <= 0;
    my $got = sysread($fh, my $buf, 512);
    return 0 unless $got;
    $seen .= $buf;
  }
  return 1;
}
# what a killed child left in its stderr pipe
sub leftover {
  my $fh = shift;
  my $text = '';
  my $rin = ''; vec($rin, fileno($fh), 1) = 1;
  while (length($text) < 4000 && select(my $rout = $rin, undef, undef, 1) > 0) {
    my $got = sysread($fh, my $buf, 4096);
    last unless $got;
    $text .= $buf;
  }
  return $text;
}
# why a network did not come up: which process, time out or exit (and its code), its stderr
sub failed {
  my ($which, $pid, $err, $timedOut) = @_;
  kill('KILL', $pid);
  my $text = leftover($err);
  waitpid($pid, 0);
  my $code = $? & 127 ? 128 + ($? & 127) : $? >> 8;
  return "R $which " . ($timedOut ? 't' : 'x') . " $code " . hx($text);
}
# (in the holder) this process in a network namespace of its own, lo up (what
# unshare --net + ip link set lo up did, without starting either): '' or what failed
sub own_netns {
  syscall($UNSHARE, 0x40000000) == 0 or return "unshare(CLONE_NEWNET): $!";
  socket(my $s, 2, 2, 0) or return "socket: $!";
  # struct ifreq: the name (16 bytes), then the flags (a short) in a 24-byte union
  my $ifr = pack('Z16 s x22', 'lo', 0);
  ioctl($s, 0x8913, $ifr) or return "SIOCGIFFLAGS lo: $!";
  ioctl($s, 0x8914, pack('Z16 s x22', 'lo', unpack('x16 s', $ifr) | 1)) or return "SIOCSIFFLAGS lo: $!";
  return '';
}
# (in a child of the helper) the holder, a child of this one that moves into a namespace of its
# own and stays until the pipe from here ends; then slirp4netns, started from here so that it
# stays in the host's namespace (its sockets are the RUN's way out), attached to the holder's
# (the argument %PID%; it reports "1" on fd 3 and exits when fd 4 ends). "P <holder pid>" or
# "R ..." on $res; then both are kept until $ctl ends (the helper closed it, or died).
sub net_child {
  my ($secs, $slirp, $res, $ctl) = @_;
  my ($hr, $hw, $ur, $uw);
  pipe($hr, $hw) && pipe($ur, $uw) or return 'E' . ($! + 0);
  my $holder = fork();
  return 'E' . ($! + 0) unless defined $holder;
  if ($holder == 0) {
    close($_) for ($hw, $ur, $res, $ctl);
    my $why = own_netns();
    syswrite($uw, length $why ? "F $why\n" : "ok\n");
    exit 1 if length $why;
    sysread($hr, my $b, 1);
    exit 0;
  }
  close($_) for ($hr, $uw);
  my $up = readline($ur) // "F the namespace holder died\n";
  if ($up !~ /^ok/) { waitpid($holder, 0); chomp $up; return "R 0 x 1 " . hx(substr($up, 2)); }
  my ($rr, $rw, $xr, $xw, $sr, $sw);
  pipe($rr, $rw) && pipe($xr, $xw) && pipe($sr, $sw) or return 'E' . ($! + 0);
  my $sp = start([map { $_ eq '%PID%' ? $holder : $_ } @$slirp], undef, undef, $sw, $rw, $xr);
  return 'E' . ($! + 0) unless defined $sp;
  close($_) for ($rw, $xr, $sw);
  my $t0 = time;
  return failed(1, $sp, $sr, time - $t0 >= $secs) unless await_token($rr, '1', $secs);
  syswrite($res, "P $holder\n");
  sysread($ctl, my $b, 1);
  close($_) for ($xw, $hw);
  kill('TERM', $sp);
  waitpid($holder, 0);
  # slirp4netns takes ~20 ms to go (the kernel tears its tap device down): not waited for
  return undef;
}
my %NETS; my %GONE; my $NID = 0;
# the child of op K (see warm), while it runs: its pid and the pipe that extends it
my $WARM;
# (in a fresh child of the helper) let go of what is the helper's: another network's control
# pipe (or the warmer's) held here would keep it alive after the helper closes it; no stdin or
# stdout of the helper's; never the watchdog
sub own_child {
  for my $o (values %NETS) { close($o->{ctl}); close($o->{res}) if defined $o->{res}; }
  %NETS = ();
  close($WARM->{ctl}) if $WARM;
  open(STDIN, '<', '/dev/null'); open(STDOUT, '>', '/dev/null');
  @ORPHAN = ();
}
# start a network in a child (op N answers at once; the network's outcome comes later as a
# "Z <id> ..." line between answers, so mounts and commits go on while it starts)
sub net_open {
  my ($secs, $slirp) = @_;
  my ($resr, $resw, $ctlr, $ctlw);
  pipe($resr, $resw) && pipe($ctlr, $ctlw) or return 'E' . ($! + 0) . "\n";
  my $pid = fork();
  return 'E' . ($! + 0) . "\n" unless defined $pid;
  if ($pid == 0) {
    close($resr); close($ctlw);
    own_child();
    my $r = net_child($secs, $slirp, $resw, $ctlr);
    syswrite($resw, "$r\n") if defined $r;
    exit 0;
  }
  close($resw); close($ctlr);
  $NETS{++$NID} = { pid => $pid, res => $resr, ctl => $ctlw, buf => '' };
  return "P $NID\n0\n";
}
# the child ends the network and exits on its own; it is reaped later (reap), not waited for here:
# the unmount of the RUN's root, say, is queued behind this answer
sub net_close {
  my $n = delete $NETS{$_[0]};
  return unless $n;
  close($n->{ctl});
  close($n->{res}) if defined $n->{res};
  $GONE{$n->{pid}} = 1;
}
sub reap {
  for my $pid (keys %GONE) { delete $GONE{$pid} if waitpid($pid, 1) != 0; }
  if ($WARM && waitpid($WARM->{pid}, 1) != 0) { close($WARM->{ctl}); $WARM = undef; }
}
# report the networks that came up (or failed) since the last look
sub net_reports {
  my $rout = shift;
  for my $id (sort keys %NETS) {
    my $n = $NETS{$id};
    next unless defined $n->{res} && vec($rout, fileno($n->{res}), 1);
    my $got = sysread($n->{res}, $n->{buf}, 4096, length $n->{buf});
    next if $got && index($n->{buf}, "\n") < 0;
    my ($line) = split /\n/, $n->{buf};
    out("Z $id " . ($line // 'E5') . "\n");
    close($n->{res}); $n->{res} = undef;
  }
}
# op K: keep the kernel's cgroup attach lock warm. Every move of a process between cgroups (the
# runtime putting a container's first process into its cgroups) takes one global lock, and the
# first taker after a quiet spell waits out an RCU grace period: 8-14 ms here, in each RUN's
# start. A child of ours moves itself into the cgroup it is already in (a no-op for it), now and
# every 2 ms: the grace period is waited out here, beside the build, and the runtime finds the
# lock warm. It stops ~100 ms after the last K, at once when a write fails or the helper goes.
sub warm_child {
  my ($file, $ctl) = @_;
  my $left = 50;
  while ($left-- > 0) {
    sysopen(my $f, $file, 1) or exit 0;
    syswrite($f, "$$\n") or exit 0;
    close($f);
    my $rin = ''; vec($rin, fileno($ctl), 1) = 1;
    next unless select(my $rout = $rin, undef, undef, 0.002) > 0;
    sysread($ctl, my $b, 64) or exit 0;
    $left = 50;
  }
  exit 0;
}
sub warm {
  my $file = shift;
  if ($WARM) {
    return "0\n" if waitpid($WARM->{pid}, 1) == 0 && syswrite($WARM->{ctl}, 'k');
    close($WARM->{ctl}); $WARM = undef;
  }
  my ($r, $w);
  pipe($r, $w) or return 'E' . ($! + 0) . "\n";
  my $pid = fork();
  return 'E' . ($! + 0) . "\n" unless defined $pid;
  if ($pid == 0) {
    close($w);
    own_child();
    $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP QUIT);
    warm_child($file, $r);
  }
  close($r);
  $WARM = { pid => $pid, ctl => $w };
  return "0\n";
}
sub handle {
  my ($op, @a) = split / /, shift, -1;
  my $r = -1; my $acc = '';
  if ($op eq 'M') {
    my ($cwd, $src, $fs, $flags, $data, $target) = map { uh($_) } @a;
    if (length($cwd) && !chdir($cwd)) { out('E' . ($! + 0) . "\n"); return; }
    my $d = length($data) ? $data : 0;
    $r = syscall($MOUNT, $src, $target, $fs, hex($a[3]) + 0, $d);
    my $e = $! + 0;
    chdir('/');
    out($r == 0 ? "0\n" : "E$e\n");
  } elsif ($op eq 'U') {
    my $target = uh($a[0]);
    $r = syscall($UMOUNT2, $target, hex($a[1]) + 0);
    out($r == 0 ? "0\n" : 'E' . ($! + 0) . "\n");
  } elsif ($op eq 'X') {
    my $top = uh($a[0]);
    my $e = lstat($top) ? (-d _ ? walk($top, \$acc) : xattrs($top, \$acc)) : $! + 0;
    out($acc . ($e ? "E$e\n" : "0\n"));
  } elsif ($op eq 'Q') {
    # in a child: where a seccomp filter on hoist itself has no x32, the call kills its caller
    my $pid = fork();
    if (!defined $pid) { out('E' . ($! + 0) . "\n"); return; }
    if ($pid == 0) { exit(syscall(0x40000000 + 39) >= 0 ? 0 : 1); }
    waitpid($pid, 0);
    out($? == 0 ? "0\n" : "E38\n");
  } elsif ($op eq 'W') {
    # arm (with an argv) or disarm (without): the owner's terminal signals must not take us along
    @ORPHAN = map { uh($_) } @a;
    $SIG{$_} = @ORPHAN ? 'IGNORE' : 'DEFAULT' for qw(INT TERM HUP QUIT);
    $0 = join(' ', 'hoist-helper', @ORPHAN > 3 ? @ORPHAN[-3 .. -1] : @ORPHAN) if @ORPHAN;
    out("0\n");
  } elsif ($op eq 'N') {
    my ($secs, @slirp) = @a;
    out(net_open($secs + 0, [map { uh($_) } @slirp]));
  } elsif ($op eq 'n') {
    net_close($a[0]);
    out("0\n");
  } elsif ($op eq 'K') {
    out(warm(uh($a[0])));
  } else {
    out("E22\n");
  }
}
# requests from stdin, a line each, and the networks' reports, whichever comes first
my $in = '';
while (1) {
  while ((my $i = index($in, "\n")) >= 0) {
    my $line = substr($in, 0, $i);
    substr($in, 0, $i + 1) = '';
    # a mistake of ours in one request must not take the helper (and the watchdog) down
    eval { handle($line); 1 } or out("E5\n");
  }
  my $rin = ''; vec($rin, 0, 1) = 1;
  vec($rin, fileno($_->{res}), 1) = 1 for grep { defined $_->{res} } values %NETS;
  my $n = select(my $rout = $rin, undef, undef, undef);
  if ($n < 0) { next if $! + 0 == 4; done(); }
  net_reports($rout);
  reap();
  if (vec($rout, 0, 1)) { my $got = sysread(STDIN, $in, 65536, length $in); done() unless $got; }
}
`;
