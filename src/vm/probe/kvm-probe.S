/*
 * The accel stage's probe guest: a multiboot kernel that QEMU loads with -kernel.
 * It starts in 32-bit protected mode, switches to 64-bit long mode (paging, PAE,
 * EFER.LME: the steps where broken KVM hosts hang a Linux guest), prints a marker
 * on COM1 in each mode and exits QEMU through isa-debug-exit (exit status 33).
 * Rebuild with scripts/build-kvm-probe.sh; a unit test checks the committed bytes.
 */
        .set COM1, 0x3f8
        .section .text
        .code32
        .align 4
header:
        .long 0x1BADB002
        .long 0
        .long -0x1BADB002
        .globl _start
_start:
        cli
        mov $stack_top, %esp
        mov $msg32, %esi
        call puts32
        /* identity-map the first 4 MiB with 2 MiB pages */
        mov $pml4, %edi
        xor %eax, %eax
        mov $(3 * 4096 / 4), %ecx
        rep stosl
        mov $pdpt, %eax
        or $3, %eax
        mov %eax, pml4
        mov $pd, %eax
        or $3, %eax
        mov %eax, pdpt
        movl $0x83, pd
        movl $0x200083, pd + 8
        mov $pml4, %eax
        mov %eax, %cr3
        mov %cr4, %eax
        or $0x20, %eax
        mov %eax, %cr4
        mov $0xC0000080, %ecx
        rdmsr
        or $0x100, %eax
        wrmsr
        mov %cr0, %eax
        or $0x80000001, %eax
        mov %eax, %cr0
        lgdt gdt_ptr
        ljmp $0x08, $long_mode
puts32:
        mov $COM1, %dx
1:      lodsb
        test %al, %al
        jz 2f
        out %al, %dx
        jmp 1b
2:      ret

        .code64
long_mode:
        mov $0x10, %ax
        mov %ax, %ds
        mov %ax, %ss
        lea msg64(%rip), %rsi
        mov $COM1, %dx
3:      lodsb
        test %al, %al
        jz 4f
        out %al, %dx
        jmp 3b
4:      mov $0x10, %al
        out %al, $0xf4
5:      hlt
        jmp 5b

        .align 8
gdt:
        .quad 0
        .quad 0x00AF9A000000FFFF
        .quad 0x00CF92000000FFFF
gdt_ptr:
        .word gdt_ptr - gdt - 1
        .long gdt
msg32:  .asciz "dvc-probe: protected mode\n"
msg64:  .asciz "dvc-probe: long mode\n"

        .section .bss
        .align 4096
pml4:   .skip 4096
pdpt:   .skip 4096
pd:     .skip 4096
        .skip 4096
stack_top:
