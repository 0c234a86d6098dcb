/* libnbd's C API drives nbdcage as a subprocess on a socketpair
 * (nbd_connect_command with -s --exit-with-parent): write 512 bytes, read
 * them back, compare; then check example1's size and MBR signature.
 */
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what)
{
  fprintf(stderr, "FAIL: %s: %s\n", what, nbd_get_error());
  exit(1);
}

static struct nbd_handle *spawn_nbdcage(const char *nbdcage, char *plugin, char *param)
{
  struct nbd_handle *nbd = nbd_create();
  if (!nbd) die("nbd_create");
  char *args[] = {(char *)nbdcage, "-s", "--exit-with-parent", plugin, param, NULL};
  if (nbd_connect_command(nbd, args) == -1) die("nbd_connect_command");
  return nbd;
}

int main(void)
{
  const char *nbdcage = getenv("NBDCAGE");
  if (!nbdcage) { fprintf(stderr, "NBDCAGE not set\n"); return 1; }

  struct nbd_handle *nbd = spawn_nbdcage(nbdcage, "memory", "size=1M");
  if (nbd_get_size(nbd) != 1048576) die("memory size");
  char wbuf[512], rbuf[512];
  for (int i = 0; i < 512; i++) wbuf[i] = (char)(i * 7 + 3);
  if (nbd_pwrite(nbd, wbuf, sizeof wbuf, 4096, 0) == -1) die("nbd_pwrite");
  if (nbd_pread(nbd, rbuf, sizeof rbuf, 4096, 0) == -1) die("nbd_pread");
  if (memcmp(wbuf, rbuf, sizeof wbuf) != 0) { fprintf(stderr, "FAIL: data differs\n"); return 1; }
  /* An unwritten region reads as zeroes. */
  if (nbd_pread(nbd, rbuf, sizeof rbuf, 0, 0) == -1) die("nbd_pread hole");
  for (int i = 0; i < 512; i++)
    if (rbuf[i] != 0) { fprintf(stderr, "FAIL: hole not zero\n"); return 1; }
  if (nbd_flush(nbd, 0) == -1) die("nbd_flush");
  if (nbd_shutdown(nbd, 0) == -1) die("nbd_shutdown");
  nbd_close(nbd);

  nbd = spawn_nbdcage(nbdcage, "example1", NULL);
  if (nbd_get_size(nbd) != 104857600) die("example1 size");
  if (nbd_is_read_only(nbd) != 1) die("example1 should be read-only");
  unsigned char sector[512];
  if (nbd_pread(nbd, sector, sizeof sector, 0, 0) == -1) die("read MBR");
  if (sector[510] != 0x55 || sector[511] != 0xaa) { fprintf(stderr, "FAIL: no MBR signature\n"); return 1; }
  if (nbd_pwrite(nbd, sector, sizeof sector, 0, 0) != -1) { fprintf(stderr, "FAIL: wrote to read-only\n"); return 1; }
  nbd_close(nbd);
  printf("PASS\n");
  return 0;
}
