#!/usr/bin/env python3
"""Stored bytes of a dataset per stream (blocked streams: the directory plus every block), from
the chunk headers and block directories (docs/FORMAT.md section 7). Usage: bench/stream-share.py DATASET..."""
import sys, os, struct, glob
NAMES=['ref_id','pos','mapq','bin','flag','name','cigar_len','cigar','seq_len','seq','qual','mate','aux_len','aux']
def leb(b,i):
    v=0;s=0
    while True:
        c=b[i];i+=1;v|=(c&0x7f)<<s;s+=7
        if c<0x80: return v,i
tot=[0]*14; raw=[0]*14; other=0
for root in sys.argv[1:]:
  for f in glob.glob(root+'/data/**/*.chunk',recursive=True):
    b=open(f,'rb').read()
    n=struct.unpack_from('<H',b,12)[0]
    hdr=16+32*n+4; acc=hdr
    for k in range(n):
        sid,codec,_,crc,off,st,dec=struct.unpack_from('<BBHIQQQ',b,16+32*k)
        raw[sid]+=dec
        if codec==3:
            i=off; inner=b[i]; i+=1; K,i=leb(b,i); nb,i=leb(b,i); pl,i=leb(b,i); i+=pl
            s=st
            for _ in range(nb):
                o,i=leb(b,i); l,i=leb(b,i); d,i=leb(b,i); i+=4; s+=l
            tot[sid]+=s; acc+=s
        else:
            tot[sid]+=st; acc+=st
    other+=len(b)-acc+hdr
T=sum(tot)+other
for k in range(14):
    print(f"{NAMES[k]:10s} {tot[k]:12d} {100*tot[k]/T:6.2f}%  raw {raw[k]:12d}  ratio {tot[k]/max(1,raw[k]):.3f}")
print(f"{'headers':10s} {other:12d} {100*other/T:6.2f}%"); print('total',T)
