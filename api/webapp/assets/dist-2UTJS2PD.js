import{a,b,c,d}from"./chunk-VJDWJTDS.js";import"./chunk-M3JHKPUV.js";import"./chunk-OEVQVCMU.js";export{d as css,b as cssCompletionSource,c as cssLanguage,a as defineCSSCompletionSource};
