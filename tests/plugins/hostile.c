/* hostile: a test fixture, not a product plugin.  A plugin written to do
 * harm, as an attacker would write one against nbdcage-plugin.h: it tries
 * one attack (attack=NAME, with target=... where the attack needs one) at
 * one moment of its life (when=config|ready|list|open|pread|close, default
 * pread) and reports what happened in the first bytes of the disk.  At
 * open, pread and close it attacks only connections to the export named
 * "attack" (list: any list_exports), so that the
 * tests' other clients see an ordinary disk of zeroes:
 *
 *   "escaped: WHAT\n"   the attack worked (the sandbox failed)
 *   "blocked: WHY\n"    the kernel refused it
 *
 * The tests read that line and also check the attack's effect from outside
 * (is the frontend alive, was the file written, ...), and run each attack
 * with --no-sandbox too, to show the check can fail.  Attacks that would
 * harm the machine if they worked only probe (kill -1 with signal 0, open
 * core_pattern for writing without writing).
 */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

static const char *attack = "";
static const char *target = "";
static const char *when = "pread";
static char result[512] = "blocked: the attack never ran\n";
static int done;

static void report(int escaped, const char *what)
{
  snprintf(result, sizeof result, "%s: %s\n", escaped ? "escaped" : "blocked", what);
  nbdkit_debug("attack %s: %s", attack, result);
}

static void report_errno(const char *call)
{
  char why[256];
  snprintf(why, sizeof why, "%s: %s", call, strerror(errno));
  report(0, why);
}

/* The frontend: our parent, or (from inside a PID namespace, where the
 * parent is invisible) any process called nbdcage that /proc shows. */
static pid_t find_frontend(void)
{
  pid_t parent = getppid();
  char path[64], comm[64];
  if (parent > 1) {
    snprintf(path, sizeof path, "/proc/%d/comm", (int) parent);
    FILE *f = fopen(path, "r");
    if (f && fgets(comm, sizeof comm, f) && strncmp(comm, "nbdcage\n", 8) == 0) {
      fclose(f);
      return parent;
    }
    if (f) fclose(f);
  }
  DIR *d = opendir("/proc");
  if (!d) return -1;
  struct dirent *e;
  pid_t found = -1;
  while ((e = readdir(d)) != NULL && found == -1) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    snprintf(path, sizeof path, "/proc/%.20s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (f && fgets(comm, sizeof comm, f) && strcmp(comm, "nbdcage\n") == 0) found = atoi(e->d_name);
    if (f) fclose(f);
  }
  closedir(d);
  return found;
}

/* What kill(-1, SIG) would reach, probed harmlessly: signal 0 to every
 * process /proc shows but ours.  (kill(-1, 0) itself says 0 as soon as it
 * tried anyone, permitted or not.) */
static void kill_all_reach(void)
{
  DIR *d = opendir("/proc");
  if (!d) return report_errno("opendir /proc");
  struct dirent *e;
  int reached = 0, tried = 0;
  while ((e = readdir(d)) != NULL) {
    pid_t p = atoi(e->d_name);
    if (p <= 1 || p == getpid() || getpgid(p) == getpgrp()) continue;
    ++tried;
    if (kill(p, 0) == 0) ++reached;
  }
  closedir(d);
  char what[96];
  snprintf(what, sizeof what, "kill(-1) would reach %d of %d other processes", reached, tried);
  report(reached > 0, what);
}

static void signal_frontend(int sig)
{
  pid_t fe = find_frontend();
  if (fe <= 0) return report(0, "the frontend is not visible");
  if (kill(fe, sig) == 0) return report(1, "signalled the frontend");
  report_errno("kill");
}

static void open_frontend_proc(const char *file, int flags)
{
  pid_t fe = find_frontend();
  if (fe <= 0) return report(0, "the frontend is not visible");
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", (int) fe, file);
  int fd = open(path, flags | O_CLOEXEC);
  if (fd < 0) return report_errno(path);
  char byte;
  /* mem: the first mapped byte of the frontend's executable is a proof. */
  if (strcmp(file, "mem") == 0) {
    char maps[64], line[256];
    snprintf(maps, sizeof maps, "/proc/%d/maps", (int) fe);
    FILE *m = fopen(maps, "r");
    unsigned long start = 0;
    if (m && fgets(line, sizeof line, m)) start = strtoul(line, NULL, 16);
    if (m) fclose(m);
    if (pread(fd, &byte, 1, (off_t) start) != 1) {
      report_errno("read /proc/PID/mem");
      close(fd);
      return;
    }
  }
  close(fd);
  report(1, path);
}

static void connect_inet(int family)
{
  int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return report_errno("socket");
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  int port = atoi(target);
  if (family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *) &ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *a;
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *) &ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    a->sin6_addr = in6addr_loopback;
    len = sizeof *a;
  }
  if (connect(s, (struct sockaddr *) &ss, len) == 0) report(1, "connected to a loopback service");
  else report_errno("connect");
  close(s);
}

static void bind_inet(void)
{
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return report_errno("socket");
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(target))};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s, (struct sockaddr *) &a, sizeof a) == 0 && listen(s, 1) == 0) report(1, "listening on loopback");
  else report_errno("bind/listen");
  close(s);
}

static void bind_inet6(void)
{
  int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return report_errno("socket");
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(atoi(target)), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  if (bind(s, (struct sockaddr *) &a, sizeof a) == 0 && listen(s, 1) == 0) report(1, "listening on loopback (IPv6)");
  else report_errno("bind/listen");
  close(s);
}

static void connect_unix(void)
{
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return report_errno("socket");
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strncpy(a.sun_path, target, sizeof a.sun_path - 1);
  if (connect(s, (struct sockaddr *) &a, sizeof a) == 0) report(1, "connected to the frontend's socket");
  else report_errno("connect");
  close(s);
}

static void read_file(void)
{
  int fd = open(target, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return report_errno("open");
  char buf[8192];  /* /dev/kmsg wants room for a whole record */
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  if (n < 0) return report_errno("read");
  report(1, "read the file");
}

static void write_file(void)
{
  int fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return report_errno("open");
  ssize_t n = write(fd, "pwned\n", 6);
  close(fd);
  if (n != 6) return report_errno("write");
  report(1, "wrote the file");
}

/* Opens for writing without writing: proves the door is open. */
static void open_for_write(void)
{
  int fd = open(target, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return report_errno("open");
  close(fd);
  report(1, "opened for writing");
}

static void run_child(void (*body)(void))
{
  pid_t p = fork();
  if (p < 0) return report_errno("fork");
  if (p == 0) {
    body();
    _exit(127);
  }
  int status;
  waitpid(p, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) report(1, "a child ran the program");
  else if (WIFEXITED(status)) {
    errno = WEXITSTATUS(status) == 127 ? EPERM : 0;
    char why[64];
    snprintf(why, sizeof why, "the child exited with %d", WEXITSTATUS(status));
    report(0, why);
  } else report(0, "the child was killed");
}

static void exec_true(void)
{
  char *argv[] = {(char *) "true", NULL};
  execv("/bin/true", argv);
}

/* A grandchild in its own session that sleeps on: it must not outlive
 * the plugin host. */
static void orphan(void)
{
  pid_t p = fork();
  if (p < 0) return report_errno("fork");
  if (p == 0) {
    setsid();
    if (fork() == 0) {
      prctl(PR_SET_NAME, "hostile-orphan");
      for (int i = 0; i < 600; ++i) sleep(1);
      _exit(0);
    }
    _exit(0);
  }
  waitpid(p, NULL, 0);
  report(1, "started an orphan in its own session");
}

/* `target` orphans (default 50) that exit at once: reparented to the
 * namespace's init, each is a zombie unless init reaps it.  Reports how
 * many zombies are left after a moment. */
static void zombies(void)
{
  int n = atoi(target) > 0 ? atoi(target) : 50;
  for (int i = 0; i < n; ++i) {
    pid_t p = fork();
    if (p < 0) return report_errno("fork");
    if (p == 0) {
      if (fork() == 0) _exit(0);  /* the orphan */
      _exit(0);
    }
    waitpid(p, NULL, 0);
  }
  usleep(500 * 1000);
  int left = 0;
  DIR *d = opendir("/proc");
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    char path[300], line[256];
    snprintf(path, sizeof path, "/proc/%.20s/stat", e->d_name);
    FILE *f = e->d_name[0] >= '1' && e->d_name[0] <= '9' ? fopen(path, "r") : NULL;
    if (f && fgets(line, sizeof line, f)) {
      char *close_paren = strrchr(line, ')');
      if (close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z') ++left;
    }
    if (f) fclose(f);
  }
  if (d) closedir(d);
  char what[96];
  snprintf(what, sizeof what, "%d of %d orphans left as zombies", left, n);
  report(left > 0, what);
}

/* Forks until refused, up to `target` processes, then lets them go. */
static void fork_bomb(void)
{
  int limit = atoi(target) > 0 ? atoi(target) : 200;
  int made = 0, pipefd[2];
  if (pipe(pipefd) < 0) return report_errno("pipe");
  for (; made < limit; ++made) {
    pid_t p = fork();
    if (p < 0) break;
    if (p == 0) {
      char c;
      close(pipefd[1]);
      (void) !read(pipefd[0], &c, 1);  /* until the bomb is over */
      _exit(0);
    }
  }
  int saved = errno;
  close(pipefd[1]);
  close(pipefd[0]);
  while (wait(NULL) > 0) {}
  char what[96];
  snprintf(what, sizeof what, "%d processes", made);
  if (made >= limit) return report(1, what);
  errno = saved;
  report_errno(what);
}

/* Allocates and touches 1 MiB at a time, up to `target` MiB, then lets
 * it all go: a memory limit must stop it first. */
static void allocate(void)
{
  int limit = atoi(target) > 0 ? atoi(target) : 512, made = 0;
  char **chunks = calloc((size_t) limit, sizeof *chunks);
  if (!chunks) return report_errno("calloc");
  for (; made < limit; ++made) {
    chunks[made] = malloc(1 << 20);
    if (!chunks[made]) break;
    memset(chunks[made], 0xa5, 1 << 20);
  }
  int saved = errno;
  for (int i = 0; i < made; ++i) free(chunks[i]);
  free(chunks);
  char what[96];
  snprintf(what, sizeof what, "allocated and touched %d MiB", made);
  if (made >= limit) return report(1, what);
  errno = saved;
  report_errno(what);
}

/* The descriptors of ours that are doorbells: pipes and eventfds. */
static int bell_fds(int *fds, int *eventfd, int max)
{
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < max) {
    char path[300], link[64];
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    ssize_t len = readlink(path, link, sizeof link - 1);
    if (len <= 0) continue;
    link[len] = 0;
    if (strncmp(link, "pipe:", 5) == 0 || strcmp(link, "anon_inode:[eventfd]") == 0) {
      eventfd[n] = link[0] == 'a';
      fds[n++] = atoi(e->d_name);
    }
  }
  closedir(d);
  return n;
}

/* For 20 s, on every connection's bells: made blocking, eventfds pushed
 * to their maximum, every ring that arrives stolen.  (Rings made up on
 * every pipe would include the host's own nbdkit_shutdown bell, which a
 * plugin may ring anyway: nbdkit's API lets it stop the server.) */
static void *abuse_bells(void *arg)
{
  int fds[64], eventfd[64];
  uint64_t max = 0xfffffffffffffffeULL;
  time_t end = time(NULL) + 20;
  while (time(NULL) < end) {
    int n = bell_fds(fds, eventfd, 64);
    for (int i = 0; i < n; ++i) {
      fcntl(fds[i], F_SETFL, 0);
      if (eventfd[i]) (void) !write(fds[i], &max, sizeof max);
    }
    for (int i = 0; i < n; ++i) {
      fcntl(fds[i], F_SETFL, O_NONBLOCK);
      char buf[64];
      (void) !read(fds[i], buf, sizeof buf);
    }
  }
  return NULL;
}

/* The buffer of the read that started the attack: it lies in the shared
 * region of the attacked connection. */
static void *attack_buf;

/* For 20 s: random bytes over the attacked connection's rings. */
static void *corrupt_rings(void *arg)
{
  FILE *maps = fopen("/proc/self/maps", "r");
  char line[512];
  unsigned long start = 0, end = 0, s, e;
  while (maps && fgets(line, sizeof line, maps))
    if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s <= (unsigned long) attack_buf && (unsigned long) attack_buf < e) {
      start = s;
      end = e;
    }
  if (maps) fclose(maps);
  if (!start) return NULL;
  unsigned long len = end - start < 65536 ? end - start : 65536;
  unsigned seed = 1;
  time_t stop = time(NULL) + 20;
  while (time(NULL) < stop)
    for (unsigned long i = 0; i < len; i += 8) ((volatile unsigned char *) start)[i] = (unsigned char) rand_r(&seed);
  return NULL;
}

/* 200,000 lines (12 MB) on stderr as fast as the pipe takes them. */
static void *flood_stderr(void *arg)
{
  static const char line[] = "flood flood flood flood flood flood flood flood flood flood\n";
  for (int i = 0; i < 200000; ++i)
    if (write(2, line, sizeof line - 1) < 0) break;
  return NULL;
}

/* Spins for 15 s. */
static void *spin(void *arg)
{
  time_t end = time(NULL) + 15;
  volatile unsigned long n = 0;
  while (time(NULL) < end) ++n;
  return NULL;
}

static void in_thread(void *(*body)(void *), const char *what)
{
  pthread_t t;
  if (pthread_create(&t, NULL, body, NULL) != 0) return report_errno("pthread_create");
  pthread_detach(t);
  report(1, what);
}

static void *stop_later(void *unused)
{
  sleep(2);
  kill(getpid(), SIGSTOP);
  return NULL;
}

static void attack_now(void)
{
  done = 1;
  if (strcmp(attack, "kill-frontend") == 0) signal_frontend(SIGKILL);
  else if (strcmp(attack, "stop-frontend") == 0) signal_frontend(SIGSTOP);
  else if (strcmp(attack, "kill-all") == 0) kill_all_reach(); else if (strcmp(attack, "ptrace-frontend") == 0) {
    pid_t fe = find_frontend();
    if (fe <= 0) return report(0, "the frontend is not visible");
    if (ptrace(PTRACE_SEIZE, fe, 0, 0) == 0) {
      ptrace(PTRACE_DETACH, fe, 0, 0);
      report(1, "ptrace attached to the frontend");
    } else report_errno("ptrace");
  } else if (strcmp(attack, "frontend-mem") == 0) open_frontend_proc("mem", O_RDWR);
  else if (strcmp(attack, "frontend-oom") == 0) open_frontend_proc("oom_score_adj", O_WRONLY);
  else if (strcmp(attack, "frontend-fd") == 0) open_frontend_proc("fd/2", O_RDONLY);
  else if (strcmp(attack, "read-file") == 0) read_file();
  else if (strcmp(attack, "write-file") == 0) write_file();
  else if (strcmp(attack, "open-write") == 0) open_for_write();
  else if (strcmp(attack, "connect-inet") == 0) connect_inet(AF_INET);
  else if (strcmp(attack, "connect-inet6") == 0) connect_inet(AF_INET6);
  else if (strcmp(attack, "bind-inet") == 0) bind_inet();
  else if (strcmp(attack, "bind-inet6") == 0) bind_inet6();
  else if (strcmp(attack, "connect-unix") == 0) connect_unix();
  else if (strcmp(attack, "exec") == 0) run_child(exec_true);
  else if (strcmp(attack, "orphan") == 0) orphan();
  else if (strcmp(attack, "crash") == 0) {
    nbdkit_error("about to crash on purpose");
    *(volatile int *) 0 = 0;
  } else if (strcmp(attack, "hang") == 0) {
    for (;;) pause();
  } else if (strcmp(attack, "stop-self") == 0) {
    if (kill(getpid(), SIGSTOP) == 0) report(1, "sent itself SIGSTOP");
    else report_errno("kill");
  } else if (strcmp(attack, "hang-if") == 0) {
    /* Hangs while the file named by target= exists (a test's switch). */
    if (access(target, F_OK) == 0)
      for (;;) pause();
    report(0, "no marker");
  } else if (strcmp(attack, "stop-later") == 0) {
    /* Stops the whole host 2 s from now, while nobody calls into it. */
    pthread_t t;
    if (pthread_create(&t, NULL, stop_later, NULL) == 0) report(1, "will stop itself in 2 s");
    else report(0, "no thread");
  } else if (strcmp(attack, "close-rpc") == 0) {
    /* ... and then stays alive: hostile_cleanup never returns. */
    if (shutdown(3, SHUT_RDWR) == 0) report(1, "shut the control socket");
    else report_errno("shutdown");
  } else if (strcmp(attack, "bells") == 0) in_thread(abuse_bells, "abusing the doorbells");
  else if (strcmp(attack, "corrupt-rings") == 0) in_thread(corrupt_rings, "corrupting the rings");
  else if (strcmp(attack, "flood-stderr") == 0) in_thread(flood_stderr, "flooding stderr");
  else if (strcmp(attack, "spin") == 0) {
    for (int i = 0; i < 8; ++i) in_thread(spin, "spinning 8 threads");
  } else if (strcmp(attack, "module") == 0) {
    /* Our own .so is no kernel module: a kernel that reads it refuses it
     * as such (ENOEXEC), which proves the door was open. */
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (syscall(SYS_finit_module, fd, "", 0) == 0 || errno != EPERM) {
      char what[96];
      snprintf(what, sizeof what, "the kernel read a module (%s)", strerror(errno));
      report(1, what);
    } else report_errno("finit_module");
    close(fd);
  }
  else if (strcmp(attack, "fork-bomb") == 0) fork_bomb();
  else if (strcmp(attack, "zombies") == 0) zombies();
  else if (strcmp(attack, "memory") == 0) allocate();
  else if (strcmp(attack, "unlisted") == 0) {
    /* Kernel interfaces a C block plugin never needs that nothing refuses
     * by name: SysV IPC, POSIX queues, I/O priorities.  The allow-list
     * answers ENOSYS to each. */
    int answered = 0, id;
    if ((id = (int) syscall(__NR_msgget, 0 /* IPC_PRIVATE */, 0600)) >= 0) {
      syscall(__NR_msgctl, id, 0 /* IPC_RMID */, NULL);
      ++answered;
    }
    if ((id = (int) syscall(__NR_semget, 0, 1, 0600)) >= 0) {
      syscall(__NR_semctl, id, 0, 0 /* IPC_RMID */);
      ++answered;
    }
    if ((id = (int) syscall(__NR_shmget, 0, 4096, 0600)) >= 0) {
      syscall(__NR_shmctl, id, 0 /* IPC_RMID */, NULL);
      ++answered;
    }
    if ((id = (int) syscall(__NR_mq_open, "hostile", O_RDWR | O_CREAT, 0600, NULL)) >= 0) {
      close(id);
      syscall(__NR_mq_unlink, "hostile");
      ++answered;
    }
    if (syscall(__NR_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, 0) >= 0) ++answered;
    char what[96];
    snprintf(what, sizeof what, "%d of 5 unlisted calls answered", answered);
    if (answered) report(1, what);
    else report_errno(what);
  } else if (strcmp(attack, "io-uring") == 0) {
    /* A large kernel interface no block plugin needs: refused by name. */
    unsigned char params[120] = {0};  /* struct io_uring_params */
    int fd = (int) syscall(__NR_io_uring_setup, 4, params);
    if (fd >= 0) {
      close(fd);
      report(1, "set up an io_uring");
    } else report_errno("io_uring_setup");
  }
  else if (strcmp(attack, "chmod") == 0) {
    /* Landlock does not govern a file's mode: only its owner may. */
    if (chmod(target, 0666) == 0) report(1, "made the file world-writable");
    else report_errno("chmod");
  } else if (strcmp(attack, "truncate") == 0) {
    if (truncate(target, 0) == 0) report(1, "truncated the file");
    else report_errno("truncate");
  }
  else if (strcmp(attack, "mount") == 0) {
    if (mount("none", target, "tmpfs", 0, NULL) == 0) {
      umount(target);
      report(1, "mounted a tmpfs");
    } else report_errno("mount");
  } else if (strcmp(attack, "unshare") == 0) {
    /* A user namespace of its own: capabilities inside it, and the
     * kernel's namespace code within reach.  In a child: unshare refuses
     * CLONE_NEWUSER to a process with threads, as the host always has. */
    int status = 0;
    pid_t child = fork();
    if (child == 0) _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : errno);
    if (child < 0) report_errno("fork");
    else if (waitpid(child, &status, 0) < 0) report_errno("waitpid");
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) report(1, "made a user namespace (unshare)");
    else {
      errno = WIFEXITED(status) ? WEXITSTATUS(status) : EINTR;
      report_errno("unshare");
    }
  } else if (strcmp(attack, "clone-newuser") == 0) {
    long child = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (child == 0) _exit(0);
    if (child > 0) {
      waitpid(child, NULL, 0);
      report(1, "made a user namespace (clone)");
    } else report_errno("clone");
  } else if (strcmp(attack, "sched-fifo") == 0) {
    struct sched_param sp = {.sched_priority = 1};
    if (sched_setscheduler(0, SCHED_FIFO, &sp) == 0) {
      sp.sched_priority = 0;
      sched_setscheduler(0, SCHED_OTHER, &sp);
      report(1, "took real-time priority");
    } else report_errno("sched_setscheduler");
  } else if (strcmp(attack, "env") == 0) {
    const char *v = getenv(target);
    if (v) report(1, v);
    else report(0, "not in the environment");
  } else report(0, "unknown attack");
}

static int hostile_config(const char *key, const char *value)
{
  if (strcmp(key, "attack") == 0) attack = value;
  else if (strcmp(key, "target") == 0) target = value;
  else if (strcmp(key, "when") == 0) when = value;
  else {
    nbdkit_error("unknown parameter '%s'", key);
    return -1;
  }
  if (!done && strcmp(when, "config") == 0 && *attack) attack_now();
  return 0;
}

static int hostile_get_ready(void)
{
  if (!done && strcmp(when, "ready") == 0) attack_now();
  return 0;
}

struct handle { int attacking; };

static void *hostile_open(int readonly)
{
  struct handle *h = malloc(sizeof *h);
  if (!h) return NULL;
  h->attacking = strcmp(nbdkit_export_name(), "attack") == 0;
  if (h->attacking && !done && strcmp(when, "open") == 0) attack_now();
  return h;
}

static void hostile_close(void *handle)
{
  struct handle *h = handle;
  if (h->attacking && !done && strcmp(when, "close") == 0) attack_now();
  free(h);
}

static int hostile_list_exports(int readonly, int is_tls, struct nbdkit_exports *exports)
{
  if (!done && strcmp(when, "list") == 0) attack_now();
  if (nbdkit_add_export(exports, "", NULL) == -1) return -1;
  return nbdkit_add_export(exports, "attack", NULL);
}

static void hostile_cleanup(void)
{
  if (strcmp(attack, "close-rpc") == 0)
    for (;;) pause();
}

static int64_t hostile_get_size(void *h) { return 1024 * 1024; }

static int hostile_pread(void *handle, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct handle *h = handle;
  memset(buf, 0, count);
  if (!h->attacking) return 0;
  attack_buf = buf;
  if (!done && strcmp(when, "pread") == 0) attack_now();
  size_t len = strlen(result);
  if (offset < len) {
    size_t n = len - offset < count ? len - offset : count;
    memcpy(buf, result + offset, n);
  }
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name = "hostile",
  .config = hostile_config,
  .get_ready = hostile_get_ready,
  .open = hostile_open,
  .close = hostile_close,
  .list_exports = hostile_list_exports,
  .cleanup = hostile_cleanup,
  .get_size = hostile_get_size,
  .pread = hostile_pread,
};

NBDKIT_REGISTER_PLUGIN(plugin)
