/*
 * The accel stage's probe guest: a multiboot kernel that QEMU loads with -kernel.
 * It starts in 32-bit protected mode, switches to 64-bit long mode (paging, PAE,
 * EFER.LME: the steps where broken KVM hosts hang a Linux guest), then does what a
 * Linux kernel's decompressor does first: it fills 32 MiB and copies them backwards
 * (std; rep movsq). On a host whose KVM runs guests only at a crawl (seen: the
 * decompressor of a Debian kernel still running after 40 s), that work misses the
 * probe's deadline although long mode was reached. It prints a marker on COM1 in
 * each mode and exits QEMU through isa-debug-exit (exit status 33).
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
        /* identity-map the first 1 GiB with 2 MiB pages */
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
        mov $pd, %edi
        mov $0x83, %eax
        mov $512, %ecx
6:      mov %eax, (%edi)
        add $0x200000, %eax
        add $8, %edi
        loop 6b
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
        /* fill 32 MiB at 16 MiB, then copy them backwards to 48 MiB, as the decompressor relocates itself */
4:      mov $0x1000000, %rdi
        mov $0x0123456789abcdef, %rax
        mov $(0x2000000 / 8), %rcx
        rep stosq
        std
        mov $(0x3000000 - 8), %rsi
        mov $(0x5000000 - 8), %rdi
        mov $(0x2000000 / 8), %rcx
        rep movsq
        cld
        lea msgmem(%rip), %rsi
        mov $COM1, %dx
7:      lodsb
        test %al, %al
        jz 8f
        out %al, %dx
        jmp 7b
8:      mov $0x10, %al
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
msgmem: .asciz "dvc-probe: 32 MiB filled and copied\n"

        .section .bss
        .align 4096
pml4:   .skip 4096
pdpt:   .skip 4096
pd:     .skip 4096
        .skip 4096
stack_top:
