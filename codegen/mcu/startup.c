/* Minimal Cortex-M4 start-up for running kiln's generated C under qemu-system-arm -M mps2-an386 with
   semihosting: a vector table (initial stack pointer and reset handler), .data copied from flash, .bss
   zeroed, the FPU enabled through CPACR, then exit(main()) so main's return value is QEMU's exit code. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __etext, __data_start__, __data_end__, __bss_start__, __bss_end__, __stack_top;
extern int main(void);
extern void initialise_monitor_handles(void);

void reset_handler(void);
static void default_handler(void) {
  for (;;) {
  }
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(&__stack_top), reset_handler, default_handler, default_handler,
    default_handler, default_handler, default_handler, 0, 0, 0, 0, default_handler, default_handler, 0,
    default_handler, default_handler};

void reset_handler(void) {
  uint32_t *src = &__etext, *dst = &__data_start__;
  while (dst < &__data_end__) *dst++ = *src++;
  for (dst = &__bss_start__; dst < &__bss_end__;) *dst++ = 0;
  *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20); /* CPACR: full access to CP10 and CP11 (the FPU) */
  __asm volatile("dsb\n isb");
  initialise_monitor_handles();
  exit(main());
}

void _init(void) {}
void _fini(void) {}
