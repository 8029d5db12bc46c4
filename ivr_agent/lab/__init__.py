"""The lab PBX: a real Asterisk 22 in a Debian sid chroot on loopback, and a call simulator."""
