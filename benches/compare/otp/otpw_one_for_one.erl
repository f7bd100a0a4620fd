%% OTP's bookkeeping per child of a one_for_one supervisor whose children are
%% added one at a time with supervisor:start_child(Sup, Spec), each with its
%% own id: the twin of Warden's `Supervisor::start_child(ChildSpec)`
%% (benches/spawn.rs, section warden_start_child). The shared OTP baseline
%% (../shared/anchors/otp-bench) measures only simple_one_for_one, the twin of
%% Warden's DynamicSupervisor. Uses the baseline's otpb_sup and otpb_worker.
%% Written by Warden (prefix otpw_), compiled by benches/compare/lib.sh's
%% otp_build beside the baseline.
%%
%%   N=100000 IDTYPE=atom erl -noshell +S 2 -pa target/compare/otp-ebin -run otpw_one_for_one main
%%
%% IDTYPE: atom (the default; OTP code usually names children with atoms, and
%% an atom's text lives in the atom table, outside the supervisor) or binary
%% (a string, as Warden's ids are). Prints, on stderr as the baseline's
%% modules do, the supervisor process's memory per child after a GC and the
%% whole VM's memory per child.
-module(otpw_one_for_one).
-export([main/0]).

main() ->
    N = list_to_integer(os:getenv("N", "100000")),
    IdType = os:getenv("IDTYPE", "atom"),
    Id = case IdType of
             "atom" -> fun(I) -> list_to_atom("w" ++ integer_to_list(I)) end;
             "binary" -> fun(I) -> iolist_to_binary(["w", integer_to_list(I)]) end
         end,
    {ok, Sup} = otpb_sup:start_link({ok, {#{strategy => one_for_one, intensity => 10, period => 5}, []}}),
    settle(),
    {memory, S0} = process_info(Sup, memory),
    T0 = erlang:memory(total),
    [{ok, _} = supervisor:start_child(Sup, #{id => Id(I),
                                           start => {otpb_worker, start_link_quiet, []},
                                           restart => permanent, shutdown => 5000, type => worker})
     || I <- lists:seq(1, N)],
    settle(),
    {memory, S1} = process_info(Sup, memory),
    T1 = erlang:memory(total),
    io:format(standard_error,
              "SUMMARY one_for_one_start_child ids=~s n=~b sup_proc_mem_per_child_B=~b mem_total_per_child_B=~b~n",
              [IdType, N, (S1 - S0) div N, (T1 - T0) div N]),
    unlink(Sup),
    exit(Sup, shutdown),
    halt(0).

settle() ->
    [erlang:garbage_collect(P) || P <- erlang:processes()],
    timer:sleep(50).
