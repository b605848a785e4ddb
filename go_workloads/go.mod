module goreclaim/workloads

go 1.15
