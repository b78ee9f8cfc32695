/*
 * The accel stage's probe guest on arm64: an ELF that QEMU's virt machine loads with -kernel and
 * enters at EL1 (KVM's vCPU, or TCG without EL2/EL3). Like the x86 probe it goes through the step
 * where a Linux kernel first depends on the host's virtualisation being right: it builds identity
 * page tables and turns on the MMU and the caches (SCTLR_EL1.M, C, I). Then it does the same memory
 * work: it fills 32 MiB and copies them backwards. It prints a marker on the PL011 UART before and
 * after each step and powers the machine off through PSCI SYSTEM_OFF (QEMU exits with status 0).
 * Rebuild with scripts/build-kvm-probe.sh arm64; a unit test checks the committed bytes.
 */
        .set UART, 0x09000000           /* the virt machine's PL011 */
        .set RAM, 0x40000000            /* where the virt machine's RAM starts */
        .set PSCI_SYSTEM_OFF, 0x84000008
        .section .text
        .globl _start
_start:
        ldr x0, =stack_top
        mov sp, x0
        adr x0, msgel1
        bl puts
        /* 1 GiB blocks: 0-1 GiB device memory (the UART), 1-2 GiB normal memory (the RAM) */
        ldr x0, =ttb
        ldr x1, =0x401                  /* block, AttrIndx 0 (device), AF */
        str x1, [x0]
        ldr x1, =(RAM | 0x705)          /* block, AttrIndx 1 (normal), inner shareable, AF */
        str x1, [x0, #8]
        ldr x1, =0xff00                 /* MAIR attr0 Device-nGnRnE, attr1 normal write-back */
        msr mair_el1, x1
        ldr x1, =0x803519               /* T0SZ 25, walks write-back inner shareable, 4 KiB granule, no TTBR1 */
        msr tcr_el1, x1
        msr ttbr0_el1, x0
        dsb ish
        tlbi vmalle1
        dsb nsh
        isb
        mrs x1, sctlr_el1
        ldr x2, =0x1005                 /* M, C, I */
        orr x1, x1, x2
        msr sctlr_el1, x1
        isb
        adr x0, msgmmu
        bl puts
        /* fill 32 MiB at RAM + 16 MiB, then copy them backwards to RAM + 48 MiB */
        ldr x0, =(RAM + 0x1000000)
        ldr x1, =0x0123456789abcdef
        ldr x2, =(0x2000000 / 16)
1:      stp x1, x1, [x0], #16
        subs x2, x2, #1
        b.ne 1b
        ldr x0, =(RAM + 0x3000000)
        ldr x3, =(RAM + 0x5000000)
        ldr x2, =(0x2000000 / 16)
2:      ldp x4, x5, [x0, #-16]!
        stp x4, x5, [x3, #-16]!
        subs x2, x2, #1
        b.ne 2b
        adr x0, msgmem
        bl puts
        ldr x0, =PSCI_SYSTEM_OFF
        hvc #0
3:      wfi
        b 3b

puts:
        ldr x1, =UART
4:      ldrb w2, [x0], #1
        cbz w2, 5f
        strb w2, [x1]
        b 4b
5:      ret

        .ltorg
msgel1: .asciz "dvc-probe: EL1\n"
msgmmu: .asciz "dvc-probe: MMU on\n"
msgmem: .asciz "dvc-probe: 32 MiB filled and copied\n"

        .section .bss
        .align 12
ttb:    .skip 4096
        .skip 4096
stack_top:
