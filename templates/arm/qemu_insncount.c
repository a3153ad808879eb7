/*
 * tinycc: QEMU TCG plugin that counts executed guest instructions and records the count each
 * time a marker instruction executes (the harness calls the marker before the inference and
 * after every layer). Deterministic: it counts instructions, not time.
 *
 * Build (host compiler):  cc -O2 -shared -fPIC -o insncount.so qemu_insncount.c
 * Use:   qemu-system-arm ... -plugin insncount.so,mark=0x1234,out=counts.txt
 * Output: "total N" then one "mark N" line per marker execution (counter value at that point).
 * Optional pcs=FILE: also "ADDRESS COUNT" (hex, decimal) per executed instruction address, for
 * a per-function profile (benchmarks/bench_cortexm.py --profile).
 *
 * Written against the plugin API version 1 (QEMU 4.2 to 7.2): only the few stable entry points
 * below are declared, so no QEMU header is needed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TC_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op,
                                                void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);

TC_PLUGIN_EXPORT int qemu_plugin_version = 1;

/* Cortex-M runs one vCPU, so plain globals are safe. */
static uint64_t executed;
static uint64_t mark_addr;
static uint64_t *marks;
static size_t n_marks, cap_marks;
static char out_path[4096];
static char pcs_path[4096];

/* Per-address counters for pcs=FILE: open addressing on the instruction address. A slot is
 * claimed at translation time, so the exec-time cost stays one inline add. */
enum { PC_SLOTS = 1 << 20 };
typedef struct {
    uint64_t addr, count;
    int used;
} pc_slot;
static pc_slot *pc_table;

static uint64_t *pc_counter(uint64_t addr) {
    size_t i = (size_t)((addr >> 1) * 2654435761u) & (PC_SLOTS - 1);
    size_t probes;
    for (probes = 0; probes < PC_SLOTS; ++probes, i = (i + 1) & (PC_SLOTS - 1)) {
        if (!pc_table[i].used) {
            pc_table[i].used = 1;
            pc_table[i].addr = addr;
            return &pc_table[i].count;
        }
        if (pc_table[i].addr == addr) return &pc_table[i].count;
    }
    return NULL;
}

static void on_mark(unsigned int vcpu_index, void *userdata) {
    (void)vcpu_index;
    (void)userdata;
    if (n_marks == cap_marks) {
        size_t cap = cap_marks ? 2 * cap_marks : 1024;
        uint64_t *grown = realloc(marks, cap * sizeof *marks);
        if (grown == NULL) return; /* the missing mark shows up as a count mismatch */
        marks = grown;
        cap_marks = cap;
    }
    marks[n_marks++] = executed;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    size_t i, n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    for (i = 0; i < n; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        /* Each mark sees the counter at the same point of the marker instruction, so the
         * difference between two marks is exactly the instructions executed in between. */
        if (mark_addr != 0 && qemu_plugin_insn_vaddr(insn) == mark_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &executed, 1);
        if (pc_table != NULL) {
            uint64_t *counter = pc_counter(qemu_plugin_insn_vaddr(insn));
            if (counter != NULL) {
                qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                           counter, 1);
            }
        }
    }
}

static void on_plugin_exit(qemu_plugin_id_t id, void *userdata) {
    FILE *f;
    size_t i;
    (void)id;
    (void)userdata;
    f = out_path[0] ? fopen(out_path, "w") : NULL;
    if (f == NULL) {
        qemu_plugin_outs("insncount: cannot write the output file\n");
        return;
    }
    fprintf(f, "total %llu\n", (unsigned long long)executed);
    for (i = 0; i < n_marks; ++i) fprintf(f, "mark %llu\n", (unsigned long long)marks[i]);
    fclose(f);
    free(marks);
    if (pc_table != NULL) {
        f = fopen(pcs_path, "w");
        if (f == NULL) {
            qemu_plugin_outs("insncount: cannot write the pcs file\n");
        } else {
            for (i = 0; i < PC_SLOTS; ++i) {
                if (pc_table[i].used && pc_table[i].count != 0) {
                    fprintf(f, "%llx %llu\n", (unsigned long long)pc_table[i].addr,
                            (unsigned long long)pc_table[i].count);
                }
            }
            fclose(f);
        }
        free(pc_table);
    }
}

TC_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv);
TC_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    int i;
    (void)info;
    for (i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "mark=", 5) == 0) {
            mark_addr = strtoull(argv[i] + 5, NULL, 0) & ~(uint64_t)1; /* drop the Thumb bit */
        } else if (strncmp(argv[i], "out=", 4) == 0 && strlen(argv[i] + 4) < sizeof out_path) {
            strcpy(out_path, argv[i] + 4);
        } else if (strncmp(argv[i], "pcs=", 4) == 0 && strlen(argv[i] + 4) < sizeof pcs_path) {
            strcpy(pcs_path, argv[i] + 4);
            pc_table = calloc(PC_SLOTS, sizeof *pc_table);
            if (pc_table == NULL) return -1;
        } else {
            fprintf(stderr, "insncount: unknown argument %s (takes mark=ADDR,out=FILE[,pcs=FILE])\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
    return 0;
}
